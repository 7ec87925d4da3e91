"""What a sweep found, said only as far as the data supports it.

Statistics (`stats`: t intervals, paired tests, Holm, split standard errors), the
comparison of optimizers (`comparison`; a pair of them and the words of a difference:
`pairs`), tuning-budget curves (`tuning_budget`), tables
and summaries for the terminal (`summary`) and the report (`tables`), failed trials
grouped by reason (`failures`), figures (`plots`),
the report itself (`document`: summary.md and report.html), optimizer paths (`paths`),
and the forked pools that draw them in parallel where a fork is safe (`forking`).
Everything here reads the Optuna record; nothing writes to it.

May import `sweeps.search`, `sweeps.store` and `trainer`; never `run`, `tracking` or `cli`.
"""

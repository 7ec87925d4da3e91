"""The Optuna storage: where a sweep's truth is kept.

A storage from a URL (`storages`: a journal file, or PostgreSQL through a storage that
rides out lost connections, `resilient`, by waiting them out: `patience`), URLs and
reachability (`urls`), the journal file
and its torn-tail healing (`journal`), the budget and launch locks (`locks`), a trial's
attribute writes in one round trip (`trial_writes`; on a database a statement per table,
`row_writes`), a database opened to be read with one query (`reading`), who runs a trial
(`owners`), Optuna calls without its experimental warnings (`quiet`), distributions parsed
once per process (`distributions`), trial counts without reading the trials
(`trial_counts`), a claim's reads in one query each for every study (`claim_queries`),
a claim on PostgreSQL in one statement, the budget lock held inside the server
(`claim_statement`), a trial's own reads and writes on PostgreSQL one statement each
(`pg_calls`),
Optuna's reads of trials as plain rows (Python's garbage collector paused meanwhile,
`collector`), a view's reads that leave heavy parts for later (`trial_reads`), a study's
counts by state and best trial in a few queries (`study_digest`), whether a URL holds a
storage already, found out without writing to it (`existing`), and the secrets in URLs:
hidden where shown, removed where kept (`secrets`). Also what every process of a command
shares: one line per warning (`logs`), and the machine's refusals (disk full, read-only, no
permission) worded as one line that stops the sweep (`os_errors`).

The bottom layer: imports nothing of `sweeps` (only `trainer.errors`).
"""

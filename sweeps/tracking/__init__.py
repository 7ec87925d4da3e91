"""MLflow: the mirror of a sweep that people look at.

URIs, clients and the sweep's experiment (`clients`), a new SQLite store copied from an
empty migrated one (`store_template`), the parent and child runs and their
writes (`runs`), which params go on which of them (`params`: the constant config on the
parent, what varies on a trial's run), a trial's run written through the worker's one
writer (`run_writes`, `writer`, and `writer_process` where a core is spare, or the launch's
own writer for its local workers, `writer_service`), patience with a server that went
away (`outage`), the `TrialLogger` trainer callback (`logger`), `sweeps sync` (`sync`:
MLflow rebuilt from the Optuna record), the report's upload (`report_upload`), the
`sweeps ui` command line (`ui`), the ordinary MLflow user a deployment's workers log in as
(`accounts`).

May import `sweeps.search`, `sweeps.store` and `trainer`; never `run`, `report` or `cli`.
"""

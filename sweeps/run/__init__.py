"""What executes trials: workers, their jobs, and the commands that start them.

The worker loop (`worker`; what it is started with: `worker_options`), which job comes next
(`claims`: confirm runs, retries, new trials, under the budget lock), one job start to end
(`trial`: fit, resume from a checkpoint, record the outcome), how a fit becomes an outcome
(`outcome`), heartbeats (`heartbeat`), trials of dead workers (`lost_trials`), a sweep
stopped when its trials keep failing the same way (`fail_fast`), local worker processes
(`processes`), how a launch's workers start while it checks the stores (`start_gate`) and
warm up before they claim (`warmup`: also the one-batch check of every model), checkpoints
(`checkpoints`), the Slurm array job of workers (`slurm_jobs`: preflight, submit, task
states, the array task itself; `slurm_launch`: following it), SIGTERM taken as Ctrl-C
(`stopping`), and the commands `launch` (its live view: `progress`), `confirm` and
`reproduce`.

May import `sweeps.report`, `sweeps.tracking`, `sweeps.search`, `sweeps.store` and
`trainer`; never `cli`.
"""

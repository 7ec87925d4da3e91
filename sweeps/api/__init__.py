"""The Python API: what `import sweeps` gives a notebook or a script.

`launch` runs a sweep like `sweeps launch` (`launching`; with `workers=0`, and Python
objects as model or data, in the calling process: `in_process`), `start` beside the caller
(`background`); `work` joins one as `sweeps worker` does (`working`); `open` finds one in
a storage (`locate` reads a command's words as the CLI does); a
`Sweep` (`handle`) answers `status()`, `trials()`, `best()`, `confirm()`, `report()` and
`reproduce()` with pandas DataFrames (`frames`) and result objects (`results`; the report
and reproduction calls in `reporting`), and raises one hierarchy of errors (`errors`).
Every `sweeps` command is parse, one call here, print. May import `run` and every package below it.
"""

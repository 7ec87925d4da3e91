"""`python -m sweeps ...` is the same as the `sweeps` command."""

from sweeps.cli import main

main()

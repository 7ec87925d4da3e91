"""`make mutate`'s summary: the mutation score of each core module, and its survivors.

Reads what `mutmut run` left in mutants/ (through mutmut's own records), prints one row
per module (killed, survived, score), and lists every surviving mutant that
`tests/mutation_equivalent.txt` does not name as equivalent, with its diff. Exits 1 while
such a survivor remains: each is a change to the code that no test notices.

The score is killed / (killed + survived - equivalent): a timeout counts as a kill (the
mutant looped where the original did not), and so does a crash (mutmut's "segfault": the
test process died of SIGSEGV or of the CPU limit's SIGKILL). Two test processes forked at
once can crash on a busy machine where one alone would not, so `make mutate` first runs
the crashed ones again, one at a time (`--crashed` lists them); a crash that repeats is the
mutant's. Mutants no selected test reaches ("no tests") and equivalent ones are left out.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = ROOT / "tests" / "mutation_equivalent.txt"


def equivalent() -> dict[str, str]:
    """``mutant name: why it cannot change behaviour`` lines (``#`` starts a comment)."""
    out = {}
    for line in EQUIVALENT.read_text().splitlines():
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if line and ":" in line:
            name, why = line.split(":", 1)
            out[name.strip()] = why.strip()
    return out


def main() -> int:
    import os

    os.chdir(ROOT)
    from mutmut.__main__ import get_diff_for_mutant, walk_mutatable_files
    from mutmut.configuration import config
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code

    crashed_only = "--crashed" in sys.argv[1:]
    if not (ROOT / "mutants").is_dir():
        print("no mutants/ here: run `make mutate` (mutmut run) first")
        return 2
    known = equivalent()
    rows, survivors, unchecked, seen = [], [], 0, {}
    for path in walk_mutatable_files():
        if not config().should_mutate(path):
            continue
        data = SourceFileMutationData(path=path)
        data.load()
        if not data.exit_code_by_key:
            continue
        counts = Counter(status_by_exit_code[c] for c in data.exit_code_by_key.values())
        seen.update({k: status_by_exit_code[c] for k, c in data.exit_code_by_key.items()})
        if crashed_only:
            crashed = [k for k, c in data.exit_code_by_key.items() if status_by_exit_code[c] == "segfault"]
            print("\n".join(crashed))
            continue
        killed = counts["killed"] + counts["timeout"] + counts["caught by type check"] + counts["segfault"]
        tested = killed + counts["survived"] + counts["suspicious"]
        survived = [k for k, c in data.exit_code_by_key.items() if status_by_exit_code[c] == "survived"]
        open_ = [k for k in survived if k not in known]
        equiv = len(survived) - len(open_)
        rows.append((str(path), killed, counts["segfault"], len(survived), equiv, counts["no tests"],
                     100.0 * killed / (tested - equiv) if tested > equiv else float("nan")))
        survivors += [(k, path) for k in open_]
        unchecked += counts["not checked"] + counts["check was interrupted by user"]
    if crashed_only:
        return 0
    print(f"{'module':40} {'killed':>7} {'crashed':>8} {'survived':>9} {'equivalent':>11} "
          f"{'no tests':>9} {'score':>7}")
    print(f"{'':40} {'':>7} {'(of them)':>8} {'':>9} {'(of them)':>11}")
    for path, killed, crashed, survived, equiv, no_tests, score in rows:
        print(f"{path:40} {killed:7d} {crashed:8d} {survived:9d} {equiv:11d} {no_tests:9d} {score:6.1f}%")
    total_killed = sum(r[1] for r in rows)
    equiv = sum(r[4] for r in rows)
    total_tested = sum(r[1] + r[3] for r in rows) - equiv
    if total_tested:
        print(f"all: {total_killed} of {total_tested} non-equivalent mutants killed "
              f"({100.0 * total_killed / total_tested:.1f} %); {equiv} equivalent survivors left out, "
              f"{len(survivors)} survivors not equivalent")
    for name, path in survivors:
        print(f"\n# survived, not listed as equivalent: {name}")
        print(get_diff_for_mutant(name, path=path))
    undecided = ("survived", "not checked", "check was interrupted by user")
    stale = sorted(k for k in known if k in seen and seen[k] not in undecided)
    if stale:  # the list must stay true: an entry a test now kills is no longer equivalent
        print(f"\nlisted as equivalent but not surviving now (remove them): {', '.join(stale)}")
    if unchecked:
        print(f"\n{unchecked} mutants not checked yet: the run was stopped; `make mutate` goes on from there")
    return 1 if survivors or unchecked else 0


if __name__ == "__main__":
    sys.exit(main())

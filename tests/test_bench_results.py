"""benchmarks/_results.py: a benchmark's output goes to the terminal and, with the command,
machine, date and commit, to its result file, which the performance page includes; the
quick-sweep benchmark keeps the verdict the getting-started page shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .benchmark_scripts import load

ROOT = Path(__file__).resolve().parents[1]


def test_a_result_file_holds_the_output_and_where_it_was_measured(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    results = load("_results.py", "bench_results")
    monkeypatch.setattr(results, "RESULTS", tmp_path)

    def bench() -> None:
        print("batch  speedup")
        print("   64     8.1x")

    results.record(bench, ["benchmarks/trainer_step.py", "--repeats", "3"])
    assert "   64     8.1x" in capsys.readouterr().out  # still printed as it runs
    text = (tmp_path / "trainer_step--repeats-3.md").read_text()
    assert "- command: `python benchmarks/trainer_step.py --repeats 3`" in text
    assert re.search(r"- machine: \d+ cores", text)
    assert re.search(r"- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert re.search(r"- commit: [0-9a-f]{7,}|- commit: unknown", text)
    assert "```\nbatch  speedup\n   64     8.1x\n```" in text


def test_a_failing_benchmark_leaves_its_last_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = load("_results.py", "bench_results")
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    (tmp_path / "growth.md").write_text("the last good run\n")

    def broken() -> None:
        raise SystemExit("PostgreSQL not found")

    with pytest.raises(SystemExit):
        results.record(broken, ["benchmarks/growth.py"])
    assert (tmp_path / "growth.md").read_text() == "the last good run\n"


def test_every_result_file_the_docs_include_exists_and_says_where_it_ran() -> None:
    page = (ROOT / "docs" / "explanation" / "performance.md").read_text()
    included = re.findall(r'--8<-- "(benchmarks/results/[^"]+)"', page)
    assert len(included) >= 10
    for path in included:
        text = (ROOT / path).read_text()
        for field in ("- command: `python benchmarks/", "- machine: ", "- date: ", "- commit: "):
            assert field in text, (path, field)


def test_the_quick_sweep_benchmark_keeps_the_verdict_for_the_docs() -> None:
    quick = load("quick_sweep.py", "bench_quick_sweep")
    summary = ("# Sweep `quick`\n\nData: ...\n\n## Verdict\n\nRanked by ...\n- adam vs sgd: ...\n\n"
               "### Ranking (confirm runs)\n\n| rank |\n|---|\n| 1 |\n\n### Confirmed configurations\n")
    verdict = quick.verdict(summary)
    assert verdict.startswith("**Verdict**")
    assert "**Ranking (confirm runs)**" in verdict and "Confirmed configurations" not in verdict
    assert "Ranked by ...\n\n- adam vs sgd" in verdict  # a list needs a blank line before it

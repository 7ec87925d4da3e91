"""The documentation as a reader meets it: a README of about a page whose links resolve, a
site that builds with `mkdocs build --strict` (no broken link or anchor, every page in the
nav, every included file present), and user pages that speak of the tool as it is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
USER_PAGES = [p for p in DOCS.rglob("*.md") if "scripts" not in p.parts]


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for needed in ("make quickstart", "make test", "docs/getting-started.md", "## License",
                   "docs/assets/screenshots/report-top.png", "docs/assets/screenshots/mlflow-runs.png"):
        assert needed in readme, needed
    # every verb of the CLI is in its table
    from sweeps.cli.app import ORDER

    for verb in ORDER:
        assert f"`sweeps {verb}" in readme, verb


def test_every_relative_link_of_the_readme_and_contributing_exists() -> None:
    for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md"):
        text = (ROOT / name).read_text()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (ROOT / target).exists(), f"{name} links to {target}, which does not exist"


def test_the_makefile_targets_the_readme_names_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("quickstart", "test", "docs", "docs-serve", "screenshots", "bench"):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target


def test_user_pages_carry_no_development_history() -> None:
    """History goes to CHANGELOG.md: no issue numbers in the README or the docs."""
    for page in [ROOT / "README.md", *USER_PAGES]:
        text = page.read_text()
        hits = re.findall(r"[Ii]ssue #?\d+", text)
        assert not hits, f"{page.relative_to(ROOT)}: {hits}"


def test_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, dict):
            return [p for v in nav.values() for p in pages(v)]
        if isinstance(nav, list):
            return [p for v in nav for p in pages(v)]
        return []

    listed = set(pages(config["nav"]))
    on_disk = {str(p.relative_to(DOCS)) for p in USER_PAGES}
    assert listed == on_disk, listed ^ on_disk


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`, as `make docs` runs it: a broken link, a missing anchor, a
    missing snippet file or a page outside the nav fails the build."""
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "DISABLE_MKDOCS_2_WARNING": "true"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    # the generated reference is in the site, and the example files are pulled in, not copied
    cli = (site / "reference" / "cli" / "index.html").read_text()
    assert "sweeps confirm" in cli and "--seeds" in cli
    tutorial = (site / "tutorials" / "own-model" / "index.html").read_text()
    assert "breast_cancer" in tutorial and "--8&lt;--" not in tutorial and "--8<--" not in tutorial
    assert (site / "assets" / "screenshots" / "report-top.png").is_file()


def test_the_tutorial_includes_every_file_of_its_example() -> None:
    page = (DOCS / "tutorials" / "own-model.md").read_text()
    example = ROOT / "examples" / "tabular"
    files = {str(p.relative_to(ROOT)) for p in example.rglob("*") if p.is_file()
             and p.name != "__init__.py" and "__pycache__" not in p.parts}
    included = set(re.findall(r'--8<-- "([^"]+)"', page))
    assert files <= included, files - included

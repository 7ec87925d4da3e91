"""The documentation site in a real browser: built as `make docs` builds it, served over
HTTP on loopback, opened in headless Chromium. The home page's picture loads, the generated
configuration reference is there, and the site's search finds a config key."""

from __future__ import annotations

import http.server
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from .test_dashboard import browser  # noqa: F401  (the browser fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    out = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "DISABLE_MKDOCS_2_WARNING": "true"})
    assert proc.returncode == 0, proc.stderr
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


def test_the_docs_site_reads_and_searches(browser: Any, site: str, tmp_path: Path) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site}/", wait_until="load")
    assert "Which optimizer and schedule" in page.inner_text("article")
    picture = page.locator("article img").first
    assert picture.evaluate("img => img.complete && img.naturalWidth > 0")
    page.screenshot(path=str(tmp_path / "docs-home.png"))

    page.goto(f"{site}/reference/config/", wait_until="load")
    table = page.inner_text("article")
    assert "optimizer.swats_eps" in table and "sweep.n_trials" in table and "launcher.time" in table
    page.screenshot(path=str(tmp_path / "docs-config.png"))

    # the site's own search (a web worker over search/search_index.json), opened with a query
    page.goto(f"{site}/?q=swats_eps", wait_until="load")
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=90_000)  # the index is built in the browser: slow when loaded
    assert "swats" in results.first.inner_text().lower()

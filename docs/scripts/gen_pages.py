"""mkdocs-gen-files script: makes the reference pages again at every build, from the code.

The same pages are committed in docs/reference/ (readable on GitHub); the tests fail when
those differ from what the code makes now (`python docs/scripts/reference.py` updates them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).parent))
import reference  # a sibling script, not a package

for path, make in reference.PAGES.items():
    with mkdocs_gen_files.open(path, "w") as page:
        page.write(make())
    mkdocs_gen_files.set_edit_path(path, "docs/scripts/reference.py")

"""Every package of the source tree is installed: pyproject.toml lists its packages by name, so
a new sub-package that is not listed works from a checkout (an editable install) and is missing
from a wheel."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_in_the_tree_is_listed_in_pyproject():
    # The one `packages = [...]` line of [tool.setuptools] (tomllib is Python 3.11+ only).
    line = re.search(r"^packages = (\[.*\])$", (ROOT / "pyproject.toml").read_text(), re.M)
    listed = set(ast.literal_eval(line.group(1)))
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "vaegui").rglob("__init__.py")
             if "resources" not in p.parts}
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"

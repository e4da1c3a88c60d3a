"""The engine must stay GUI-free: importing every core module (and the CLI) loads no Qt."""

import pkgutil
import subprocess
import sys

import vaegui.core


def test_core_and_cli_import_no_qt():
    modules = [f"vaegui.core.{m.name}" for m in pkgutil.iter_modules(vaegui.core.__path__)]
    assert "vaegui.core.trainer" in modules
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules + ["vaegui.cli"])
        + "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')]\n"
        + "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

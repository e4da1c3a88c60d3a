"""The engine must stay GUI-free: importing every core module (and the CLI) loads no Qt."""

import pkgutil
import subprocess
import sys

import vaegui.cli
import vaegui.core


def test_core_and_cli_import_no_qt():
    """The command modules too: `vaegui export` imports Qt only when it runs."""
    modules = [f"vaegui.core.{m.name}" for m in pkgutil.iter_modules(vaegui.core.__path__)]
    commands = [f"vaegui.cli.{m.name}" for m in pkgutil.iter_modules(vaegui.cli.__path__)]
    assert "vaegui.core.trainer" in modules and "vaegui.cli.export" in commands
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules + ["vaegui.cli"] + commands)
        + "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')]\n"
        + "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

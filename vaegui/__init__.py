"""vaegui: a desktop latent-space explorer for variational autoencoders.

The Python API (``vaegui.explore``, ``vaegui.export_bundle``, ``vaegui.load``, ``vaegui.Run``) is
imported on first use: ``import vaegui`` stays cheap (no torch, no Qt), which the command line's
start-up and the app's splash-free first paint rely on.
"""

from __future__ import annotations

import importlib as _importlib

__version__ = "0.1.0"

# name -> (module, attribute): the public API, loaded when first touched (PEP 562).
_API = {
    "explore": ("vaegui.gui.explore_window", "explore"),
    "export_bundle": ("vaegui.gui.export.user_bundle", "export_bundle"),
    "load": ("vaegui.core.run_api", "load"),
    "Run": ("vaegui.core.run_api", "Run"),
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        module, attribute = _API[name]
        value = getattr(_importlib.import_module(module), attribute)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'vaegui' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})

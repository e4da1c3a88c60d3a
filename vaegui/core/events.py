"""Events for Qt-free models: a model owns :class:`Event` objects and emits them when its state
changes; views connect callbacks and the model never learns who listens (napari's pattern).

Callbacks run synchronously in the thread that changed the model (the GUI thread in the app).
Bound methods are held weakly, so a view that is gone is never called and never kept alive.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any


class Event:
    """A list of callbacks, called in connection order with the emitted value."""

    def __init__(self, name: str = ""):
        self.name = name
        self._callbacks: list[Callable[[], Callable | None]] = []  # each yields the callback or None
        self._blocked = 0

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Connect ``callback``; returns it, so ``connect`` can decorate a function."""
        if hasattr(callback, "__self__") and hasattr(callback, "__func__"):
            ref: Callable[[], Callable | None] = weakref.WeakMethod(callback)
        else:
            ref = (lambda cb=callback: cb)
        self._callbacks.append(ref)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        self._callbacks = [ref for ref in self._callbacks if ref() not in (None, callback)]

    def emit(self, *args: Any) -> None:
        if self._blocked:
            return
        dead = False
        for ref in list(self._callbacks):
            callback = ref()
            if callback is None:
                dead = True
            else:
                callback(*args)
        if dead:
            self._callbacks = [ref for ref in self._callbacks if ref() is not None]

    def __len__(self) -> int:
        return sum(ref() is not None for ref in self._callbacks)

    def blocked(self) -> "_Blocker":
        """``with event.blocked(): ...`` emits nothing inside the block."""
        return _Blocker(self)


class _Blocker:
    def __init__(self, event: Event):
        self._event = event

    def __enter__(self) -> None:
        self._event._blocked += 1

    def __exit__(self, *exc: Any) -> None:
        self._event._blocked -= 1

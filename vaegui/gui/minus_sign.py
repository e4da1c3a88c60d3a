"""One rule for the minus sign every view and figure draws: U+2212 (as wide as a plus, as
typeset figures have it) where the font has the glyph, the hyphen where it does not."""

from __future__ import annotations

from PySide6.QtGui import QFontMetrics

from vaegui.core.explorer_images import MINUS


def has_minus(metrics: QFontMetrics) -> bool:
    return metrics.inFontUcs4(ord(MINUS))


def drawable(metrics: QFontMetrics, text: str) -> str:
    """``text`` as the font can draw it: '-' for each minus sign it lacks."""
    return text if MINUS not in text or has_minus(metrics) else text.replace(MINUS, "-")

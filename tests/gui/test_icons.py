"""The app's own SVG icons are found and used (the style's standard icons are only a fallback)."""

import pytest
from PySide6.QtGui import QIcon

from vaegui.gui import icons


@pytest.mark.parametrize("name", sorted(icons._FALLBACK))
def test_each_icon_comes_from_its_svg(qapp, name):
    path = icons.RESOURCES / "icons" / f"{name}.svg"
    assert path.is_file()
    from_svg = QIcon(str(path)).pixmap(24, 24).toImage()
    assert not from_svg.isNull() and icons.icon(name).pixmap(24, 24).toImage() == from_svg

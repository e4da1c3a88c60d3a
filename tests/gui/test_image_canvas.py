"""ImageCanvas: draws every source pixel as a crisp square of its exact value (it paints from a
copy converted once to 32 bits, which must not change a value)."""

import numpy as np
import pytest

from vaegui.gui.explorer.image_canvas import ImageCanvas


def painted_pixels(canvas: ImageCanvas, height: int, width: int) -> np.ndarray:
    """(H, W, 3) the colour painted at the centre of each source pixel's square."""
    shot = canvas.grab().toImage()
    rect = canvas.image_rect()
    out = np.zeros((height, width, 3), np.uint8)
    for i in range(height):
        for j in range(width):
            x = rect.left() + int((j + 0.5) * rect.width() / width)
            y = rect.top() + int((i + 0.5) * rect.height() / height)
            c = shot.pixelColor(x, y)
            out[i, j] = (c.red(), c.green(), c.blue())
    return out


@pytest.mark.parametrize("channels", [1, 3])
def test_paints_each_pixel_with_its_exact_value(show_widget, channels):
    canvas = show_widget(ImageCanvas(), 200, 160)
    rng = np.random.default_rng(channels)
    image = rng.integers(0, 256, (channels, 5, 7), dtype=np.uint8)
    canvas.set_image(image)
    assert canvas.image_rect().width() == 7 * (canvas.image_rect().width() // 7) > 7  # enlarged
    expected = np.repeat(image, 3, axis=0) if channels == 1 else image
    np.testing.assert_array_equal(painted_pixels(canvas, 5, 7), expected.transpose(1, 2, 0))
    assert canvas.array() is not None and canvas.qimage().width() == 7


def test_a_new_image_replaces_the_painted_one_and_none_shows_the_hint(show_widget):
    canvas = show_widget(ImageCanvas(), 120, 120)
    canvas.set_image(np.zeros((1, 4, 4), np.uint8))
    canvas.set_image(np.full((1, 4, 4), 1.0, np.float32))
    assert (painted_pixels(canvas, 4, 4) == 255).all()
    canvas.set_image(None, "nothing yet")
    assert canvas.hint() == "nothing yet" and canvas.qimage() is None and canvas.image_rect().isEmpty()

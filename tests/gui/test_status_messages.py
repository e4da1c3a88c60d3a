"""Messages that fit: the status bar shows a message's first line, cut at a word with "…" where
the bar is too narrow, and the whole message in its tooltip."""

from __future__ import annotations

from PySide6.QtGui import QFontMetrics

from vaegui.gui.main_window import MainWindow
from vaegui.gui.run_status_bar import ELLIPSIS

OFFLINE = ("Using built-in shapes: MNIST is not downloaded and the server did not answer\n"
           "MNIST is not in /home/someone/.cache/vaegui/data and cannot be downloaded now: "
           "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz: "
           "[Errno -2] Name or service not known")
LONG = ("Opened a-run-folder-with-a-long-name (fashion-mnist): finished, 46,875 steps; raise Epochs "
        "to train further · test −ELBO 101.25 nats at epoch 100 · the map shows 10,000 test images "
        "of the final weights, projected with UMAP (fitted in 12 s)")


def _window(qtbot, settings, width: int) -> MainWindow:
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.set_window_size(width, 800)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_a_long_message_is_cut_at_a_word_and_whole_in_the_tooltip(qtbot, settings):
    window = _window(qtbot, settings, 1280)
    bar = window.status_bar
    bar.showMessage(LONG)
    shown = bar.currentMessage()
    assert shown.endswith(ELLIPSIS) and LONG.startswith(shown[:-1])
    assert LONG[len(shown) - 1] == " "  # cut between two words
    assert QFontMetrics(bar.font()).horizontalAdvance(shown) <= bar.message_room()
    assert bar.toolTip() == LONG
    window.resize(1900, 800)  # wider: more of it shows
    qtbot.waitUntil(lambda: bar.currentMessage() == LONG, timeout=2000)
    window.close()


def test_the_conclusion_shows_and_the_details_go_to_the_tooltip(qtbot, settings):
    window = _window(qtbot, settings, 1280)
    bar = window.status_bar
    bar.showMessage(OFFLINE)
    assert bar.currentMessage() == OFFLINE.splitlines()[0] and bar.toolTip() == OFFLINE
    bar.showMessage("Saved")  # short and whole: no tooltip
    assert bar.currentMessage() == "Saved" and bar.toolTip() == ""
    bar.clearMessage()
    assert bar.toolTip() == ""
    window.close()

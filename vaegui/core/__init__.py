"""GUI-free engine: data, models, losses, training, checkpoints and latent tools.

Nothing under this package may import Qt or pyqtgraph (tests/core/test_no_qt.py checks it), so the
same engine runs headless, in tests, on a server and under the GUI.
"""

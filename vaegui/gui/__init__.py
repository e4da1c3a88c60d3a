"""The desktop app: a thin Qt layer over :mod:`vaegui.core` (the core never imports this package).

Entry point: :func:`vaegui.gui.app.main`. :class:`~vaegui.gui.main_window.MainWindow` wires the
panels (one widget class per module) to the :class:`~vaegui.gui.training_worker.TrainingWorker`,
which trains, encodes maps and reads and writes checkpoints on a background QThread.
"""

"""Export: figures, images and data to files (see plot_export.py, targets.py, bundle.py)."""

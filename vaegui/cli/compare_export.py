"""`vaegui export --compare RUN1 RUN2 ... --out DIR`: the comparison figure (the runs' maps side
by side over the same test images, planes aligned to the first run's, and their curves
overlaid) as PNG, SVG and PDF, and the results table as CSV, without a display.

A run folder that does not exist or cannot be read is one line on stderr, the others are still
compared, and the command then exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from ..core.export import SCREEN_DPI

FIGURE_NAME = "comparison"
TABLE_NAME = "comparison.csv"
EXIT_USER_ERROR = 2


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if not args.compare:
        print("vaegui: error: give a checkpoint, or runs to compare with --compare", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.checkpoint is not None:
        print("vaegui: error: give a checkpoint or --compare, not both", file=sys.stderr)
        return EXIT_USER_ERROR
    from ..core.compare import Comparison, read_runs
    from ..core.export import check_folder, make_folder, write_text
    from ..core.sweep import csv_text
    from .options import use_offscreen_qt

    check_folder(args.out)
    runs, problems = read_runs(args.compare)
    comparison = Comparison.of(runs, problems=problems)
    for line in comparison.problems:
        print(f"vaegui: error: {' '.join(line.split())}", file=sys.stderr)
    if not comparison.runs:
        return EXIT_USER_ERROR
    use_offscreen_qt()
    from PySide6.QtWidgets import QApplication

    from ..gui.compare.compare_figure import CompareFigure
    from ..gui.export.plot_export import write_plot

    app = QApplication.instance() or QApplication(["vaegui"])  # noqa: F841 - widgets need it
    folder = make_folder(args.out)
    figure = CompareFigure()  # never shown: laid out off screen
    figure.set_comparison(comparison)
    figure.layout_for_export()
    written = []
    title = "vaegui comparison of " + ", ".join(comparison.names)
    for fmt in args.format:
        path = write_plot(figure.ci, Path(folder) / f"{FIGURE_NAME}.{fmt}", fmt, args.dpi / SCREEN_DPI, title)
        written.append(path.name)
    cols, rows = comparison.table()
    written.append(write_text(Path(folder) / TABLE_NAME, csv_text(cols, rows)).name)
    print(json.dumps({"out": str(folder), "files": written, "runs": comparison.names,
                      "points": comparison.count, "not_compared": len(comparison.problems)}),
          file=out, flush=True)
    figure.deleteLater()
    return EXIT_USER_ERROR if comparison.problems else 0

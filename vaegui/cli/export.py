"""`vaegui export CKPT --out DIR`: the app's export bundle, written without a display.

The checkpoint (or a run folder's latest) is opened as the app opens it: its test set is
encoded for the map, the explorer decodes its images, and the same plot widgets the window shows
are laid out off screen and exported. Qt runs on its offscreen platform (see
:func:`.options.use_offscreen_qt`), so figures can be made on a server, and come out the same on any machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from ..core.export import FIGURE_SIZES, PLOT_FORMATS, PLOT_SCALE, PLOT_SCALES, SCREEN_DPI
from ..core.projection import ProjectionSpec
from .options import file_name, int_at_least, use_offscreen_qt


def add_parser(sub) -> None:
    """The `export` command's options (sub: the parser's subparsers)."""
    x = sub.add_parser("export", help="write figures and data of a checkpoint to a folder, headless")
    x.add_argument("checkpoint", metavar="CKPT", type=file_name, nargs="?",
                   help="a checkpoint, or a run folder (its latest checkpoint)")
    x.add_argument("--compare", metavar="RUN", type=file_name, nargs="+", help="instead of CKPT: "
                   "compare 2 to 8 run folders (or a sweep's folder): figure and table")
    x.add_argument("--out", required=True, type=file_name, help="the bundle's folder (made if needed)")
    x.add_argument("--format", type=formats, default=",".join(PLOT_FORMATS),
                   help=f"plot formats, comma-separated: {', '.join(PLOT_FORMATS)} (default all)")
    x.add_argument("--dpi", type=int_at_least(round(PLOT_SCALES[0] * SCREEN_DPI), round(PLOT_SCALES[1] * SCREEN_DPI)),
                   default=round(PLOT_SCALE * SCREEN_DPI),
                   help=f"PNG resolution of the plots ({SCREEN_DPI} = the on-screen size; default "
                        f"{round(PLOT_SCALE * SCREEN_DPI)})")
    x.add_argument("--image-scale", type=int_at_least(1, 64),
                   help="whole enlargement of decoded images (default: to about 1024 pixels)")
    x.add_argument("--projection", type=ProjectionSpec.argument, default=ProjectionSpec(),
                   help="the latent map's plane for L > 2: pca, umap, tsne or axes:I,J (default pca)")
    x.add_argument("--data-dir", help="where the checkpoint's dataset is (default its own)")
    x.add_argument("--offline", action="store_true", help="never download a missing dataset")


def formats(text: str) -> tuple[str, ...]:
    """An argparse type: "png,pdf" -> ("png", "pdf")."""
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in chosen if f not in PLOT_FORMATS]
    if bad or not chosen:
        raise argparse.ArgumentTypeError(f"{text!r}: formats are {', '.join(PLOT_FORMATS)}, comma-separated")
    return chosen


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.compare or args.checkpoint is None:  # the comparison's export has its own module
        from .compare_export import run as export_comparison

        return export_comparison(args, out)
    from ..core.export import check_folder

    check_folder(args.out)
    use_offscreen_qt()
    explorer, history, steps_per_epoch, config, checkpoint = _open(args)

    from PySide6.QtWidgets import QApplication, QWidget

    from ..core.export import all_or_nothing, copy_file
    from ..gui.export.bundle import CHECKPOINT, Sources, finish, write_bundle
    from ..gui.export.plot_export import lay_out

    app = QApplication.instance() or QApplication(["vaegui"])  # noqa: F841 - widgets need it
    holder = QWidget()  # never shown: the panels are laid out off screen
    plots = _figures(holder, explorer, history, steps_per_epoch)
    for target in plots:
        lay_out(target.plot, FIGURE_SIZES.get(target.name))
    sources = Sources(explorer, plots, history=history, steps_per_epoch=steps_per_epoch,
                      settings=config.to_dict())
    with all_or_nothing(args.out):  # Ctrl-C or SIGTERM: no partial bundle
        report = write_bundle(args.out, sources, args.format, args.dpi / SCREEN_DPI, args.image_scale)
        copy_file(checkpoint, report.folder / CHECKPOINT)
        report.add(CHECKPOINT)
        finish(report, f"vaegui export of {checkpoint}")
    for name, why in report.missing:
        print(f"vaegui: not exported: {name}: {why}", file=sys.stderr)
    print(json.dumps({"out": str(report.folder), "files": [n for n, _ in report.written] + ["README.md"],
                      "missing": [n for n, _ in report.missing]}), file=out, flush=True)
    return 0


def _open(args: argparse.Namespace):
    """(explorer model, history, steps per epoch, settings, checkpoint path) of the checkpoint:
    the map of its test set, its weights, its last evaluation and an interpolation between two
    test images of different classes."""
    import numpy as np

    from ..core.checkpoint import check_images_match, model_from_checkpoint
    from ..core.dataset_loader import load_dataset
    from ..core.decoder import encode_set
    from ..core.explorer import ExplorerModel
    from ..core.latent import Snapshot, example_indices
    from ..core.layout_cache import map_epoch, project_encoded
    from ..core.loss_history import History
    from ..core.progress import steps_per_epoch
    from ..core.run_paths import run_of
    from ..core.run_reader import RunReader, load_run_checkpoint

    checkpoint, run_dir = run_of(args.checkpoint)
    state = load_run_checkpoint(checkpoint, run_dir)  # checked against its run.json
    run = RunReader(run_dir) if run_dir is not None else None  # where a layout is cached
    config, model = model_from_checkpoint(state, checkpoint)
    if args.data_dir:
        config = config.replace(data={"data_dir": args.data_dir})
    data = load_dataset(config.data, download=not args.offline)
    check_images_match(checkpoint, model.image_shape, data.image_shape)
    step = int(state["step"])
    m = ExplorerModel()
    m.set_snapshot(Snapshot(config.model, tuple(model.image_shape), state["model"], step))
    m.set_encoded(project_encoded(encode_set(model, data, "test", step=step), args.projection,
                                  *map_epoch(run, step), on_cache_error=lambda e: print(f"vaegui: {e}", file=sys.stderr)))
    labels = data.test_labels.numpy()
    m.set_examples(data.test_images.numpy()[example_indices(labels, m.samples.count)])
    history = History.from_dict(state["history"])
    if history.evals:
        m.set_evaluation(history.evals[-1])
    m.pick(np.zeros(m.latent_dim, np.float32))  # the prior's mode: the point and the traversal's centre
    ends = example_indices(labels, 2)  # the first images of the first two classes
    if len(ends) == 2:
        m.set_endpoint("a", m.dataset_latent(int(ends[0])))
        m.set_endpoint("b", m.dataset_latent(int(ends[1])))
    return m, history, steps_per_epoch(len(data.train_images), config.train.batch_size), config, checkpoint


def _figures(parent, explorer, history, steps_per_epoch):
    """The window's plot panels, made off screen under ``parent``: their export targets."""
    from ..core.run_model import RunModel
    from ..gui.explorer.latent_map import LatentMap
    from ..gui.export.targets import find_targets
    from ..gui.kl_view import KLDimView
    from ..gui.loss_view import LossView

    run = RunModel()  # the losses and the last evaluation, as the window's views show them
    run.set_history(history, steps_per_epoch)
    LatentMap(explorer, parent)
    LossView(run, parent)
    KLDimView(run, parent)
    plots, _ = find_targets(parent)
    return plots

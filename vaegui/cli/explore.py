"""`vaegui explore --model package.module:factory`: the explorer on the user's own model.

The module is imported from the current folder or ``PYTHONPATH`` (the user's own code, run
because the user asked for it), ``factory()`` makes the model, ``--weights`` are read without
unpickling anything (``torch.load(weights_only=True)``, or safetensors for a ``.safetensors``
file), and the window opens on the images of ``--dataset`` (its test split) or ``--images``.
Every problem on the way is one line and exit code 2, before any window opens.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from ..core.config import USER_OUTPUTS
from ..core.dataset_catalog import DATASET_NAMES, FOLDER_PREFIX
from ..core.errors import VaeguiError
from .options import file_name, int_at_least, use_offscreen_qt



class ModelImportError(VaeguiError):
    """--model, --weights, --images or --labels cannot be used: one line says which and why."""


def add_parser(sub) -> None:
    x = sub.add_parser("explore", help="open the explorer on your own PyTorch model")
    x.add_argument("--model", required=True, metavar="MODULE:FACTORY",
                   help="package.module:factory, a function (or class) that returns the model; "
                        "imported from the current folder or PYTHONPATH")
    x.add_argument("--weights", type=file_name, metavar="FILE",
                   help="a state_dict for the model: torch.save's file (read with weights_only) or .safetensors")
    source = x.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help=f"{', '.join(DATASET_NAMES)} or {FOLDER_PREFIX}PATH (its test images)")
    source.add_argument("--images", type=file_name, metavar="FILE.npy",
                        help="images (N, C, H, W), (N, H, W) or (N, H, W, C), uint8 or float")
    x.add_argument("--labels", type=file_name, metavar="FILE.npy", help="their class numbers (N,), with --images")
    x.add_argument("--limit", type=int_at_least(1), help="the first N images only")
    x.add_argument("--output", choices=USER_OUTPUTS, default="auto",
                   help="what the decoder returns (default auto: decided from a decoded batch)")
    x.add_argument("--image-size", type=int_at_least(8, 1024), default=28,
                   help="side of shapes and of folder images (default 28)")
    x.add_argument("--data-dir", help="where --dataset lives (default $VAEGUI_DATA_DIR or the user cache)")
    x.add_argument("--offline", action="store_true", help="never download a missing dataset")
    x.add_argument("--screenshot", metavar="PNG",
                   help="save a picture of the window once the map is shown, then exit (offscreen)")


def run(args: argparse.Namespace) -> int:
    from ..gui.app import check_writable_file  # Qt is not imported by it until a window is made

    if args.labels and not args.images:
        raise ModelImportError("--labels: goes with --images (a --dataset has its own labels)")
    if args.screenshot:
        check_writable_file("--screenshot", args.screenshot)
    model = make_model(args.model)
    if args.weights:
        load_weights(model, args.weights)
    images, labels, class_names = _images(args)

    from ..core.user_images import user_images
    from ..core.user_model import UserModel

    user = UserModel(model, user_images(images, labels, class_names), output=args.output)
    if args.screenshot:
        use_offscreen_qt()  # before Qt's application is made
    elif sys.platform.startswith("linux") and not (os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY")
                                                   or os.environ.get("WAYLAND_DISPLAY")):
        raise ModelImportError("no display found (set DISPLAY, or add --screenshot PNG for an offscreen run)")

    from ..gui.explore_window import open_window, run_until_closed

    return run_until_closed(open_window(user), args.screenshot)


def make_model(spec: str):
    """``factory()`` of "package.module:factory" (the factory may be a dotted name in the module)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name.strip() or not attribute.strip():
        raise ModelImportError(f"--model {spec!r}: expected package.module:factory")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -c` would find the user's module
    try:
        thing = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's module: whatever it raises is one line
        raise ModelImportError(f"--model {spec}: cannot import {module_name} ({type(exc).__name__}: {exc})") from None
    for part in attribute.split("."):
        if not hasattr(thing, part):
            raise ModelImportError(f"--model {spec}: {module_name} has no {attribute}")
        thing = getattr(thing, part)
    if not callable(thing):
        raise ModelImportError(f"--model {spec}: {attribute} is a {type(thing).__name__}, not a function or class")
    try:
        return thing()
    except Exception as exc:  # noqa: BLE001 - as above
        raise ModelImportError(f"--model {spec}: {attribute}() raised {type(exc).__name__}: {exc}") from None


def load_weights(model, path: str) -> None:
    """Load a state_dict into ``model`` (on its own device); a Lightning checkpoint's
    ``state_dict`` is taken from it."""
    import pickle

    import torch

    if not isinstance(model, torch.nn.Module):
        raise ModelImportError(f"--weights {path}: the factory returned a {type(model).__name__}, not a torch.nn.Module")
    if not Path(path).is_file():
        raise ModelImportError(f"--weights {path}: no such file")
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ModelImportError(f"--weights {path}: reading .safetensors needs the safetensors "
                                   "package (pip install safetensors)") from None
        reader = load_file
    else:
        def reader(p):
            return torch.load(p, map_location="cpu", weights_only=True)
    try:
        state = reader(path)
    except pickle.UnpicklingError:
        raise ModelImportError(f"--weights {path}: refused: it holds objects other than tensors and "
                               "plain data (nothing in it was run)") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line
        raise ModelImportError(f"--weights {path}: cannot be read ({type(exc).__name__}: {_first_line(exc)})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelImportError(f"--weights {path}: holds a {type(state).__name__}, not a state_dict")
    try:
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - missing or unexpected keys, wrong shapes
        raise ModelImportError(f"--weights {path}: do not fit {type(model).__name__} ({_first_line(exc)})") from None


def _images(args: argparse.Namespace):
    import numpy as np

    if args.images:
        images = _npy("--images", args.images)
        labels = _npy("--labels", args.labels) if args.labels else None
        if args.limit:
            images, labels = images[:args.limit], None if labels is None else labels[:args.limit]
        return images, labels, None
    from ..core.config import DataConfig
    from ..core.dataset_loader import load_dataset

    data = load_dataset(DataConfig(dataset=args.dataset, data_dir=args.data_dir, image_size=args.image_size,
                                   test_limit=args.limit), download=not args.offline)
    return data.test_images, np.asarray(data.test_labels), data.class_names


def _npy(option: str, path: str):
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ModelImportError(f"{option} {path}: cannot be read as a .npy array ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    """The error's text on one line, cut short (load_state_dict's runs to many lines)."""
    text = " ".join(str(exc).split())
    return (text[:300] + "…" * (len(text) > 300)) if text else type(exc).__name__

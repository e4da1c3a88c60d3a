"""What the commands share: the parser class and number types, how options become settings,
and how a user's error is printed.

Shared by the command line and the app (which parses its own few options with the same parser
class and number types, and prints its errors with :func:`fail`). Option defaults and bounds
are the configuration dataclasses'; this module only maps options to settings and names the
option in an error. It imports no command module, so every command (and the app) can import it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from ..core.config import (DEVICES, KL_FORMS, LIKELIHOODS, MODEL_FAMILIES, THREADS_AUTO, DataConfig,
                           ModelConfig, RunConfig, TrainConfig)
from ..core.dataset_catalog import DATASET_NAMES, FOLDER_PREFIX
from ..core.errors import EXIT_USER_ERROR, ConfigError, VaeguiError
from ..core.thread_governor import check_threads

# Options of `vaegui train` -> (section, setting) of RunConfig. Their defaults are the
# dataclasses' (an option left out is None here, so a resumed run knows what was asked).
OPTION_FIELDS = {
    "dataset": ("data", "dataset"), "data_dir": ("data", "data_dir"),
    "image_size": ("data", "image_size"), "channels": ("data", "channels"),
    "train_limit": ("data", "train_limit"), "test_limit": ("data", "test_limit"),
    "model": ("model", "family"), "latent_dim": ("model", "latent_dim"), "hidden": ("model", "hidden"),
    "likelihood": ("model", "likelihood"), "sigma": ("model", "sigma"),
    "epochs": ("train", "epochs"), "batch_size": ("train", "batch_size"), "lr": ("train", "lr"),
    "seed": ("train", "seed"), "device": ("train", "device"), "kl": ("train", "kl"),
    "beta": ("train", "beta"), "warmup": ("train", "warmup_steps"), "iw_samples": ("train", "iw_samples"),
    "threads": ("train", "threads"),
}
_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def int_at_least(minimum: int, maximum: int | None = None):
    """An argparse type: a whole number no smaller than ``minimum`` (nor larger than
    ``maximum``), with a readable error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # not a number, or more digits than Python converts
            raise argparse.ArgumentTypeError(f"{clip(text)!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{clip(str(value))} must be at most {maximum:,}")
        return value

    return parse


def threads_setting(text: str) -> int | str:
    """An argparse type: "auto" or a whole number (its bounds are TrainConfig's)."""
    if text.strip().lower() == THREADS_AUTO:
        return THREADS_AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{clip(text)!r} is not {THREADS_AUTO} or a whole number") from None


def file_name(text: str) -> str:
    """An argparse type: a path that is not empty (an empty one would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty name is not a file or folder")
    return text


def clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def _default(dest: str) -> Any:
    section, name = OPTION_FIELDS[dest]
    return next(f.default for f in dataclasses.fields(_SECTIONS[section]) if f.name == name)


_positive_int, _non_negative_int = int_at_least(1), int_at_least(0)


def add_config_options(t: argparse.ArgumentParser) -> None:
    """The options that set a run's settings (OPTION_FIELDS), for `vaegui train` and any
    command that trains."""
    # No defaults here (None = not given): config_from_args takes them from the dataclasses,
    # and a resumed run from the checkpoint. Bounds live in the dataclasses' validation.
    d = _default
    t.add_argument("--dataset", help=f"{', '.join(DATASET_NAMES)} or {FOLDER_PREFIX}PATH "
                   f"(default {d('dataset')})")
    t.add_argument("--data-dir", help="dataset folder (default $VAEGUI_DATA_DIR, else the user cache)")
    t.add_argument("--model", choices=MODEL_FAMILIES, help=f"default {d('model')}")
    t.add_argument("--latent-dim", type=_positive_int, help=f"default {d('latent_dim')}")
    t.add_argument("--hidden", type=_positive_int, help=f"hidden width of the mlp ({d('hidden')})")
    t.add_argument("--likelihood", choices=LIKELIHOODS, help=f"default {d('likelihood')}")
    t.add_argument("--sigma", type=float, help="std of the gaussian likelihood (start value for "
                   f"gaussian-learned; default {d('sigma')})")
    t.add_argument("--kl", choices=KL_FORMS, help=f"default {d('kl')}")
    t.add_argument("--beta", type=float, help=f"KL weight (default {d('beta')})")
    t.add_argument("--warmup", type=_non_negative_int, help="KL warm-up steps (default 0)")
    t.add_argument("--epochs", type=_positive_int, help=f"total epochs (default {d('epochs')})")
    t.add_argument("--batch-size", type=_positive_int, help=f"default {d('batch_size')}")
    t.add_argument("--lr", type=float, help=f"Adam learning rate (default {d('lr')})")
    t.add_argument("--seed", type=_non_negative_int, help=f"default {d('seed')}")
    t.add_argument("--device", choices=DEVICES, help="default auto")
    t.add_argument("--threads", type=threads_setting, metavar="auto|N",
                   help="torch CPU threads for training; auto (the default) tunes the count to "
                   "the measured step rate while training runs, which on a busy machine is often "
                   "fewer than the cores; a fixed N reproduces a run bit for bit")
    t.add_argument("--iw-samples", type=_non_negative_int,
                   help="also report the IWAE bound with K samples at the end")
    t.add_argument("--image-size", type=_positive_int, help=f"folder/shapes image side ({d('image_size')})")
    t.add_argument("--channels", type=int, choices=(1, 3), help="folder images: 1 or 3")
    t.add_argument("--train-limit", type=_positive_int, help="use only the first N training images")
    t.add_argument("--test-limit", type=_positive_int, help="use only the first N test images")


def config_from_args(args: argparse.Namespace, base: RunConfig | None = None,
                     only: tuple[str, ...] | None = None) -> RunConfig:
    """``base`` (default: the dataclasses' defaults) with the options given on the command line
    (of those in ``only``, when given). A bad value is a ConfigError naming the option."""
    changes: dict[str, dict[str, Any]] = {}
    for dest, (section, name) in OPTION_FIELDS.items():
        value = getattr(args, dest, None)
        if value is not None and (only is None or dest in only):
            changes.setdefault(section, {})[name] = value
    try:
        check_threads(getattr(args, "threads", None))  # this machine's limit, with the reason
        return (base or RunConfig()).replace(**changes)
    except ConfigError as exc:
        raise ConfigError(name_the_option(str(exc))) from None


def name_the_option(message: str) -> str:
    """"lr: inf is not a finite number" -> "argument --lr: inf is not a finite number"."""
    setting, sep, rest = message.partition(":")
    for dest, (_, name) in OPTION_FIELDS.items():
        if sep and setting in (name, dest):
            return f"argument --{dest.replace('_', '-')}:{rest}"
    return message


def resumed_config(args: argparse.Namespace, saved: RunConfig) -> RunConfig:
    """The checkpoint's settings with the options given on the command line, under the one
    resume rule (core.resume): an option that would change the model or the data, given with
    another value, is a ConfigError naming the option."""
    from ..core.resume import resumed

    wanted = config_from_args(args, saved)
    try:
        return resumed(saved, wanted)
    except ConfigError as exc:
        raise ConfigError(name_the_option(str(exc))) from None


# ---- errors ----------------------------------------------------------------------------------
def report(exc: BaseException) -> bool:
    """Print the one line of a user's error; False for anything else (a bug, whose traceback
    is wanted)."""
    if isinstance(exc, ConfigError):
        message = name_the_option(str(exc))
    elif isinstance(exc, VaeguiError):
        message = str(exc)
    elif isinstance(exc, OSError):  # a path given on the command line that the system refuses
        message = f"{exc.filename}: " if exc.filename else ""
        message += f"{exc.strerror or exc}"
    elif isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and out_of_memory(exc)):
        message = (f"out of memory ({exc or type(exc).__name__}): try a smaller --batch-size, "
                   "--hidden or --image-size")
    else:
        return False
    fail(message)
    return True


def fail(message: str) -> int:
    """One line on stderr, whatever the message holds (naming the rank under torchrun)."""
    prefix = f"rank {rank()}: " if rank() else ""
    print(f"vaegui: error: {prefix}{' '.join(message.split())}", file=sys.stderr)
    return EXIT_USER_ERROR


def rank() -> int:
    """This process's rank under torchrun (0 without it). Read from the environment as
    core.distributed does, because the answer is needed before torch is imported."""
    try:
        return int(os.environ.get("RANK", "0")) if "WORLD_SIZE" in os.environ else 0
    except ValueError:
        return 0


def out_of_memory(exc: RuntimeError) -> bool:
    text = str(exc)
    return "out of memory" in text or "can't allocate memory" in text


DISPLAYLESS_PLATFORMS = ("offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb")  # Qt's own

def use_offscreen_qt(environ=os.environ, platform: str = sys.platform) -> None:
    """Qt's offscreen platform, before Qt is imported: the export never shows a window, and
    offscreen draws the same figures with or without a display. A platform the user names in
    QT_QPA_PLATFORM is kept, unless it needs a display there is none of (Qt would abort)."""
    chosen = environ.get("QT_QPA_PLATFORM", "").split(":")[0]  # "xcb:option=..." -> "xcb"
    x11_or_wayland = not platform.startswith(("win", "darwin"))
    no_display = x11_or_wayland and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    if not chosen or (no_display and chosen not in DISPLAYLESS_PLATFORMS):
        environ["QT_QPA_PLATFORM"] = "offscreen"

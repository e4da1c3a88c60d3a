"""The one rule of resuming a run, for the CLI, the app and torchrun alike: a resumed run keeps
its checkpoint's model and stream of data, and may change only how training goes on."""

from __future__ import annotations

import dataclasses

from .config import RunConfig
from .errors import ConfigError

# What a resumed run may change. Every other setting would make it another model (family, sizes,
# likelihood) or another stream of data (dataset, limits, image size, batch size, seed).
RESUMABLE = frozenset({("train", "epochs"), ("train", "lr"), ("train", "beta"),
                       ("train", "warmup_steps"), ("train", "kl"), ("train", "device"),
                       ("train", "iw_samples"), ("train", "threads"),
                       ("data", "data_dir")})


def fixed_differences(saved: RunConfig, wanted: RunConfig) -> list[tuple[str, str, object, object]]:
    """The settings a resumed run cannot change in which ``wanted`` differs from ``saved``:
    (section, field, saved value, wanted value)."""
    from .dataset_catalog import dataset_key

    found = []
    for section in ("data", "model", "train"):
        old, new = getattr(saved, section), getattr(wanted, section)
        for f in dataclasses.fields(old):
            if (section, f.name) in RESUMABLE:
                continue
            a, b = getattr(old, f.name), getattr(new, f.name)
            same = dataset_key(a) == dataset_key(b) if (section, f.name) == ("data", "dataset") else a == b
            if not same:
                found.append((section, f.name, a, b))
    return found


def resumed(saved: RunConfig, wanted: RunConfig) -> RunConfig:
    """``saved`` with the settings of ``wanted`` that a resumed run may change; a ConfigError
    names the first setting that differs and may not."""
    differences = fixed_differences(saved, wanted)
    if differences:
        section, name, old, new = differences[0]
        raise ConfigError(f"{name}: {new} differs from the checkpoint's {old}, and a resumed run "
                          "cannot change it (start a new run instead)")
    changes: dict[str, dict[str, object]] = {}
    for section, name in RESUMABLE:
        changes.setdefault(section, {})[name] = getattr(getattr(wanted, section), name)
    return saved.replace(**changes)

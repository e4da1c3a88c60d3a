"""vaegui.export_bundle: the bundle of `vaegui export`, of a user's model, headless."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PIL import Image

import user_models as um  # tests/user_models.py
import vaegui
from vaegui.core.user_model import ModelError


def _model(kind: str):
    if kind == "encode/decode":
        model = um.TupleVAE(latent_shape=(4, 2, 2))
        return {"model": model}, lambda x: model.encode(x)[0].flatten(1)
    if kind == "pythae":
        model = um.PythaeStyle()
        return {"model": model}, lambda x: model.encoder(x).embedding
    encode, decode = um.callables()
    return {"encode": encode, "decode": decode}, encode


@pytest.mark.parametrize("kind", ["encode/decode", "pythae", "callables"])
def test_export_bundle_writes_valid_files(tmp_path, kind):
    args, means = _model(kind)
    x, y = um.images(n=50)
    out = vaegui.export_bundle(images=x, labels=y, out=tmp_path / "b", class_names=["a", "b", "c"],
                               formats=("png", "svg"), **args)
    assert out == tmp_path / "b"
    with torch.no_grad():
        z = means(torch.from_numpy(x)).numpy()
    data = np.load(out / "latents.npz")
    np.testing.assert_allclose(data["z"], z, rtol=1e-6, atol=1e-6)  # the encoder means, in order
    np.testing.assert_array_equal(data["label"], y)
    assert list(data["class_names"]) == ["a", "b", "c"]
    with open(out / "latents.csv") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 1 + len(x) and rows[0][:2] == ["index", "label"]
    for name in ("latent_map", "manifold_overlay"):
        assert Image.open(out / f"{name}.png").size[0] > 100
        assert ET.parse(out / f"{name}.svg").getroot().tag.endswith("svg")
    for name in ("point", "interpolation", "traversal", "manifold_grid", "samples", "reconstructions"):
        image = np.asarray(Image.open(out / f"{name}.png"))
        assert image.size and image.std() > 0, name  # decoded, not blank
    gif = Image.open(out / "interpolation.gif")
    assert gif.n_frames > 2
    readme = (out / "README.md").read_text()
    assert "checkpoint.pt: the model was trained outside vaegui" in readme
    assert not (out / "checkpoint.pt").exists() and not (out / "losses.png").exists()
    assert "Explored model:" in readme and "convention " + kind in readme


def test_a_model_that_does_not_fit_writes_nothing(tmp_path):
    with pytest.raises(ModelError, match="model Linear has neither"):
        vaegui.export_bundle(torch.nn.Linear(2, 2), um.images()[0], out=tmp_path / "b")
    assert not (tmp_path / "b").exists()

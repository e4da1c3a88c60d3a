"""The export writers of the core: files read back to the same numbers, images are enlarged
without blur, a GIF has its frames, and a failed write leaves no partial file."""

from __future__ import annotations

import csv
import errno

import numpy as np
import pytest
from PIL import Image

from vaegui.core import export
from vaegui.core.loss_history import History
from vaegui.core.latent import EncodedSet, Projection
from vaegui.core.progress import EvalResult


def test_losses_csv_reads_back_the_history(tmp_path):
    steps = np.arange(1, 6)
    losses = np.random.default_rng(0).random((5, 3)) * 100
    history = History(steps, losses, [EvalResult(1, 5, 3.5, 3.0, 0.5, 0.1, np.ones(2), 2)],
                      kl_weights=np.array([0.1, 0.2, np.nan, 1.0, 1.0]))
    export.write_losses_csv(tmp_path / "l.csv", history, steps_per_epoch=5)
    export.write_test_losses_csv(tmp_path / "t.csv", history)
    with open(tmp_path / "l.csv") as f:
        rows = list(csv.DictReader(f))
    np.testing.assert_array_equal([[float(r[k]) for k in ("recon", "kl", "neg_elbo")] for r in rows], losses)
    assert [r["epoch"] for r in rows][-1] == "1.0" and rows[2]["kl_weight"] == ""  # NaN: unknown
    with open(tmp_path / "t.csv") as f:
        assert list(csv.DictReader(f)) == [{"epoch": "1", "step": "5", "recon": "3.0", "kl": "0.5",
                                            "neg_elbo": "3.5", "bits_per_dim": "0.1", "active_units": "2"}]


def test_latents_npz_and_csv_hold_codes_labels_and_plane(tmp_path):
    z = np.random.default_rng(1).standard_normal((7, 4)).astype(np.float32)
    p = Projection.fit(z)
    enc = EncodedSet(z, p.transform(z), p, np.arange(7) % 3, ("a", "b", "c"), np.zeros((7, 1, 2, 2), np.uint8))
    export.write_latents_npz(tmp_path / "z.npz", enc)
    export.write_latents_csv(tmp_path / "z.csv", enc)
    with np.load(tmp_path / "z.npz") as npz:
        np.testing.assert_array_equal(npz["z"], z)
        np.testing.assert_allclose((npz["z"] - npz["projection_mean"]) @ npz["projection_components"].T,
                                   np.stack([npz["x"], npz["y"]], 1), atol=1e-5)
        assert list(npz["class_names"]) == ["a", "b", "c"]
    with open(tmp_path / "z.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0][-3:] == ["x", "y", "projection"] and {r[-1] for r in rows[1:]} == {"pca"}
    table = np.array([r[:-1] for r in rows[1:]], np.float64)
    np.testing.assert_array_equal(table[:, 2:6], z.astype(np.float64))
    np.testing.assert_array_equal(table[:, 6:], enc.xy.astype(np.float64))


def test_latents_of_a_nonlinear_map_carry_its_layout_and_name(tmp_path):
    from vaegui.core.plane_inverse import LearnedInverse
    from vaegui.core.projection import NonlinearProjection

    rng = np.random.default_rng(3)
    z, xy = rng.standard_normal((9, 4)).astype(np.float32), rng.standard_normal((9, 2)).astype(np.float32)
    inverse = LearnedInverse([(np.zeros((2, 4)), np.zeros(4))], np.zeros(2), 1.0, np.zeros(4), np.ones(4))
    p = NonlinearProjection("tsne", {"perplexity": 30.0}, z, xy, inverse)
    enc = EncodedSet(z, xy, p, np.zeros(9, np.int64), ("a",), np.zeros((9, 1, 2, 2), np.uint8))
    export.write_latents_npz(tmp_path / "z.npz", enc)
    export.write_latents_csv(tmp_path / "z.csv", enc)
    with np.load(tmp_path / "z.npz") as npz:
        assert str(npz["projection"]) == "tsne" and "projection_components" not in npz.files
        np.testing.assert_array_equal(np.stack([npz["x"], npz["y"]], 1), xy)
    with open(tmp_path / "z.csv") as f:
        rows = list(csv.reader(f))
    np.testing.assert_array_equal(np.array([r[-3:-1] for r in rows[1:]], np.float32), xy)
    assert {r[-1] for r in rows[1:]} == {"tsne"}


def test_png_is_enlarged_without_blur_and_gif_has_its_frames(tmp_path):
    image = np.random.default_rng(2).random((3, 4, 5)).astype(np.float32)
    export.write_png(tmp_path / "i.png", image, factor=3)
    with Image.open(tmp_path / "i.png") as png:
        pixels = np.asarray(png)
    assert pixels.shape == (12, 15, 3)
    np.testing.assert_array_equal(pixels[::3, ::3], export.to_uint8(image).transpose(1, 2, 0))
    np.testing.assert_array_equal(pixels[2::3, 2::3], pixels[::3, ::3])
    frames = np.stack([np.full((1, 4, 4), k / 10) for k in range(6)])
    export.write_gif(tmp_path / "a.gif", frames, factor=2, frame_ms=50)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (8, 8) and gif.info["duration"] == 50
    assert export.default_factor((1, 28, 28)) == 37


def test_a_failed_write_names_the_file_and_leaves_no_partial_file(tmp_path):
    def half_then_full_disk(f):
        f.write(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")
    target = tmp_path / "big.npz"
    with pytest.raises(export.ExportError, match=rf"{target}: No space left on device"):
        export.write_file(target, half_then_full_disk)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(export.ExportError, match="No such file"):
        export.write_text(tmp_path / "missing" / "README.md", "x")


def test_bundle_readme_says_what_each_file_is_and_what_is_missing():
    text = export.bundle_readme("t", [("a.png", "the map"), ("a.svg", "the map"), ("l.csv", "losses")],
                                [("point.png", "no point picked")])
    assert "- `a.png`, `a.svg`: the map" in text and "- `l.csv`: losses" in text
    assert "point.png: no point picked" in text


def test_an_output_folder_is_checked_before_any_work_and_without_making_it(tmp_path):
    export.check_folder(tmp_path / "new" / "deeper")
    assert list(tmp_path.iterdir()) == []  # nothing made yet
    in_the_way = tmp_path / "file"
    in_the_way.write_text("")
    with pytest.raises(export.ExportError, match=rf"{in_the_way / 'sub'}: cannot create the folder: {in_the_way} is not"):
        export.check_folder(in_the_way / "sub")
    with pytest.raises(export.ExportError, match="not a folder"):
        export.check_folder(in_the_way)
    assert export.make_folder(tmp_path / "a" / "b").is_dir()


def test_gif_frame_times_are_whole_hundredths_of_a_second():
    assert [export.gif_frame_ms(ms) for ms in (97, 44.9, 5, 0)] == [100, 40, 20, 20]

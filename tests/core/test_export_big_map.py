"""All the points of a big map export to NPZ and to CSV, the CSV streamed a chunk of rows at a
time (never one string of every row), and both read back exactly."""

import io

import numpy as np

from vaegui.core import export
from vaegui.core.latent import EncodedSet, Projection


def big_encoded(n=150_000, dim=3):
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(n, dim)).astype(np.float32)
    projection = Projection.fit(latents)
    return EncodedSet(latents=latents, xy=projection.transform(latents), projection=projection,
                      labels=rng.integers(0, 10, n), class_names=tuple("abcdefghij"),
                      images=np.zeros((n, 1, 1, 1), np.uint8))


class Recorder(io.BytesIO):
    def __init__(self):
        super().__init__()
        self.sizes = []

    def write(self, data):
        self.sizes.append(len(data))
        return super().write(data)


def test_the_csv_of_every_point_is_streamed_and_reads_back_exactly(tmp_path):
    enc = big_encoded()
    header, columns = export.latents_columns(enc)
    out = Recorder()
    export._write_csv(out, header, columns)
    total = len(out.getvalue())
    assert len(out.sizes) > 3 and max(out.sizes) < total / 2  # written in pieces
    path = export.write_latents_csv(tmp_path / "points.csv", enc)
    assert path.read_bytes() == out.getvalue()
    table = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(7))
    assert open(path).readline().strip() == "index,label,z_1,z_2,z_3,x,y,projection"
    assert set(np.loadtxt(path, delimiter=",", skiprows=1, usecols=7, dtype=str)) == {"pca"}
    assert table.shape == (150_000, 7)
    np.testing.assert_array_equal(table[:, 1], enc.labels)
    np.testing.assert_array_equal(table[:, 2:5].astype(np.float32), enc.latents)
    np.testing.assert_array_equal(table[:, 5:].astype(np.float32), enc.xy)


def test_the_npz_holds_every_point(tmp_path):
    enc = big_encoded()
    with np.load(export.write_latents_npz(tmp_path / "points.npz", enc)) as z:
        np.testing.assert_array_equal(z["z"], enc.latents)
        np.testing.assert_array_equal(z["label"], enc.labels)
        assert len(z["x"]) == 150_000

"""`vaegui export --compare RUN1 RUN2 ... --out DIR`: the comparison figure and table, and a run
folder that cannot be read answered in one line with exit code 2 while the others compare."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import pytest
from PySide6.QtGui import QImage

from vaegui import cli


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, train_shapes):
    root = tmp_path_factory.mktemp("compare")
    return [train_shapes(root / name, "--latent-dim", dim, "--test-limit", test, "--threads", "1")
            for name, dim, test in (("l2", "2", "128"), ("l5", "5", "96"))]


def test_export_compare_writes_the_figure_and_the_table(two_runs, tmp_path, capsys, qapp):
    out = tmp_path / "cmp"
    missing = tmp_path / "no-such-run"
    code = cli.main(["export", "--compare", *map(str, two_runs), str(missing), "--out", str(out)])
    assert code == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0] and "no such folder" in err[0]
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["runs"] == ["l2", "l5"] and summary["points"] == 96  # the test images both have
    assert sorted(p.name for p in out.iterdir()) == ["comparison.csv", "comparison.pdf", "comparison.png",
                                                     "comparison.svg"]
    image = QImage(str(out / "comparison.png"))
    assert not image.isNull() and image.width() > 1000 and image.height() > 600
    colours = {image.pixelColor(x, y).name() for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert "#4477aa" in colours and "#ee6677" in colours  # the two runs' curves
    root = ET.parse(out / "comparison.svg").getroot()
    assert root.tag.endswith("svg") and len(list(root.iter())) > 200  # the maps' points are vectors
    pdf = (out / "comparison.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    with open(out / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["run"], r["latent_dim"], r["status"]) for r in rows] == [("l2", "2", "finished"), ("l5", "5", "finished")]
    assert all(float(r["test_elbo"]) == pytest.approx(float(r["test_recon"]) + float(r["test_kl"])) for r in rows)


def test_export_compare_of_nothing_readable_writes_nothing(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert cli.main(["export", "--compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 2
    assert not out.exists()

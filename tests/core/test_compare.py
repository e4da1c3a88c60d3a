"""Comparing runs without Qt: the Procrustes alignment of the maps' planes, the shared points,
the table, and run folders that cannot be read."""

import json

import numpy as np
import pytest

from vaegui.core.compare import Comparison, ComparedRun, procrustes_rotation, read_runs
from vaegui.core.projection import turn_projection
from vaegui.core.config import DataConfig, ModelConfig, RunConfig
from vaegui.core.latent import Projection


def _run(name, latents, dataset="shapes", metrics=(), **model):
    config = RunConfig(data=DataConfig(dataset=dataset), model=ModelConfig(latent_dim=latents.shape[1], **model))
    labels = np.arange(len(latents)) % 3
    return ComparedRun(name, None, config, 10, list(metrics), 1, latents.astype(np.float32), labels,
                       ("a", "b", "c"), "finished")


def test_procrustes_recovers_a_rotation_and_a_reflection():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 2)) * [3.0, 1.0]
    angle = 0.7
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mirror = np.diag([1.0, -1.0])
    for r in (turn, turn @ mirror):
        moved = points @ r.T + [5.0, -2.0]  # turned (or mirrored) and shifted
        found = procrustes_rotation(moved, points)
        np.testing.assert_allclose(found @ found.T, np.eye(2), atol=1e-12)
        moved_c = moved - moved.mean(0)
        np.testing.assert_allclose(moved_c @ found, points - points.mean(0), atol=1e-9)


def test_a_turned_projection_keeps_an_exact_inverse():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 6)) * np.arange(1, 7)
    projection = Projection.fit(z)
    angle = 2.0
    r = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = turn_projection(projection, r)
    np.testing.assert_allclose(turned.transform(z), projection.transform(z) @ r, atol=1e-4)
    p = np.array([[0.3, -1.2]])
    np.testing.assert_allclose(turned.transform(turned.inverse(p)), p, atol=1e-5)
    assert turned.explained.sum() == pytest.approx(projection.explained.sum())


def test_maps_share_the_first_points_and_planes_turn_to_the_first_runs():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(500, 5)) * [4, 2, 1, 0.5, 0.1]
    mirrored = z.copy()
    mirrored[:, 0] *= -1  # the same space with one axis the other way round
    comparison = Comparison.of([_run("a", z), _run("b", mirrored[:300]), _run("c", z[:, :2])])
    assert comparison.count == 300 and [len(r.xy) for r in comparison.runs] == [300, 300, 300]
    first, second = comparison.runs[0].xy, comparison.runs[1].xy
    np.testing.assert_allclose(second, first, atol=1e-4)  # mirrored back, not drawn mirrored
    assert comparison.runs[1].turned and not comparison.runs[0].turned
    assert (comparison.labels == np.arange(300) % 3).all()


def test_runs_of_another_dataset_are_left_out_in_one_line():
    z = np.zeros((10, 2))
    comparison = Comparison.of([_run("a", z), _run("b", z, dataset="mnist")])
    assert comparison.names == ["a"]
    assert len(comparison.problems) == 1 and "mnist" in comparison.problems[0]


def test_the_table_has_the_varying_settings_and_the_results():
    z = np.zeros((10, 2))
    last = {"epoch": 1, "test_elbo": 5.0, "test_recon": 4.0, "test_kl": 1.0, "active_units": 2}
    comparison = Comparison.of([_run("r", z, metrics=[last], hidden=64),
                                _run("r", z, metrics=[last], hidden=128)])
    cols, rows = comparison.table()
    assert cols == ["run", "hidden", "test_elbo", "test_recon", "test_kl", "active_units", "seconds", "status"]
    assert [(r["run"], r["hidden"], r["test_kl"]) for r in rows] == [("r", 64, 1.0), ("r (2)", 128, 1.0)]


def test_unreadable_folders_are_one_line_each(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text("{not json")
    runs, problems = read_runs([tmp_path / "missing", tmp_path / "empty", tmp_path / "bad"])
    assert runs == [] and len(problems) == 3
    assert "no such folder" in problems[0] and "not a run folder" in problems[1] and "run.json" in problems[2]
    assert all("\n" not in p for p in problems)


def _folder(path, epochs_done, epochs=3):
    """A run folder as run_writer leaves it, without weights or maps: run.json and metrics."""
    from vaegui.core.run_writer import RUN_FORMAT, RUN_VERSION

    path.mkdir(parents=True)
    config = RunConfig(data=DataConfig(dataset="shapes")).replace(train={"epochs": epochs})
    dataset = {"name": "shapes", "image_shape": [1, 28, 28], "class_names": ["square", "ellipse", "triangle"]}
    (path / "run.json").write_text(json.dumps({"format": RUN_FORMAT, "version": RUN_VERSION, "dataset": dataset,
                                               "config": config.to_dict(), "steps_per_epoch": 4}))
    latent_dim = config.model.latent_dim
    lines = [{"epoch": e, "step": 4 * e, "test_elbo": 10.0 - e, "test_recon": 9.0 - e, "test_kl": 1.0,
              "test_bits_per_dim": 0.01, "kl_per_dim": [1.0 / latent_dim] * latent_dim, "active_units": 1}
             for e in range(1, epochs_done + 1)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_a_sweep_folder_stands_for_its_runs_whose_folders_say_finished_or_running(tmp_path):
    from vaegui.core import sweep

    _folder(tmp_path / "beta=1", 3)
    _folder(tmp_path / "beta=2", 1)
    _folder(tmp_path / "beta=4", 2)
    rows = [{"run": "beta=1", "status": "finished", "seconds": 5.0},
            {"run": "beta=2", "status": "running", "seconds": 2.0},  # its sweep was killed
            {"run": "beta=4", "status": "failed", "seconds": 1.0}]
    sweep.write_summary(tmp_path, rows, ["beta"], False, ["beta=1", "beta=2", "beta=4", "beta=8"])
    runs, problems = read_runs([tmp_path])
    assert problems == []  # beta=8 never started: no folder, not an error
    assert [(r.name, r.status, r.seconds) for r in runs] == [
        ("beta=1", "finished", 5.0), ("beta=2", "stopped", 2.0), ("beta=4", "failed", 1.0)]
    (tmp_path / "beta=2" / "heartbeat").write_text("{}")  # its writer is back
    assert read_runs([tmp_path])[0][1].status == "running"
    assert [r.curve("test_elbo")[1].tolist() for r in runs] == [[9.0, 8.0, 7.0], [9.0], [9.0, 8.0]]


def test_inside_polygon_is_the_even_odd_rule():
    from vaegui.core.selection import inside_polygon

    square = np.array([[0, 0], [4, 0], [4, 4], [0, 4]])
    x = np.array([1.0, 3.9, 5.0, -0.1, 2.0, 2.0])
    y = np.array([1.0, 3.9, 2.0, 2.0, 4.5, -1.0])
    assert inside_polygon(x, y, square).tolist() == [True, True, False, False, False, False]
    # A "C" shape: the notch is outside although within the bounding box.
    c = np.array([[0, 0], [4, 0], [4, 1], [1, 1], [1, 3], [4, 3], [4, 4], [0, 4]])
    assert inside_polygon(np.array([0.5, 2.5, 2.5]), np.array([2.0, 2.0, 0.5]), c).tolist() == [True, False, True]
    rng = np.random.default_rng(3)
    pts = rng.uniform(-1, 5, size=(2000, 2))
    px, py = pts[:, 0], pts[:, 1]
    in_box = (px > 0) & (px < 4) & (py > 0) & (py < 4)
    in_notch = (px > 1) & (py > 1) & (py < 3)
    np.testing.assert_array_equal(inside_polygon(px, py, c), in_box & ~in_notch)
    assert not inside_polygon(x, y, square[:2]).any()  # fewer than 3 vertices: nothing inside

"""Settings that mean what they say: options on the command line are for that launch; the saved
settings change only when the user changes them in the window. And the launch's own messages:
the window size option, a mistyped dataset name, the first-launch note."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QImage

from vaegui import cli
from vaegui.core.config import RunConfig
from vaegui.gui import app
from vaegui.gui import settings as store
from vaegui.gui.main_window import MainWindow

SAVED = RunConfig().replace(data={"dataset": "kmnist"}, train={"epochs": 12, "lr": 3e-4})


@pytest.fixture
def user_settings(tmp_path, tmp_path_factory):
    """The settings a plain launch reads (QSettings()), in a folder of this test's own."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "user"))
    yield lambda: QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, store.ORGANIZATION,
                            store.APPLICATION)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path_factory.mktemp("qsettings")))


def test_command_line_options_are_for_that_launch_only(qtbot, tmp_path, user_settings):
    store.save_config(user_settings(), SAVED)
    shot = tmp_path / "shot.png"
    assert app.main(["--dataset", "shapes", "--epochs", "3", "--window-size", "1280x800",
                     "--screenshot", str(shot)]) == 0
    assert QImage(str(shot)).size().toTuple() == (1280, 800)
    # A plain launch then opens with what was saved before, not with shapes and 3 epochs.
    stored = store.load_config(user_settings())
    assert stored == SAVED
    config, note = app.initial_config(stored, app.parse_args([]))
    assert config.data.dataset == "kmnist" and config.train.epochs == 12 and not note
    assert store.load_window(user_settings()) is None  # nor was the window size saved


def test_what_the_user_changes_in_the_window_is_saved_and_only_that(qtbot, settings):
    store.save_config(settings, SAVED)
    launched, _ = app.initial_config(store.load_config(settings), app.parse_args(["--dataset", "shapes",
                                                                                   "--epochs", "3"]))
    window = MainWindow(settings, config=launched)
    qtbot.addWidget(window)
    assert window.training_panel.config().data.dataset == "shapes"
    window.training_panel.set_config(launched.replace(train={"beta": 4.0}))  # the user's one change
    window.close()
    assert store.load_config(settings) == SAVED.replace(train={"beta": 4.0})


def test_a_checkpoint_opened_at_launch_leaves_the_saved_settings_alone(qtbot, tmp_path, user_settings,
                                                                       train_shapes):
    run = train_shapes(tmp_path / "run", "--latent-dim", "3")
    store.save_config(user_settings(), SAVED)
    assert app.main(["--checkpoint", str(run), "--screenshot", str(tmp_path / "shot.png")]) == 0
    assert store.load_config(user_settings()) == SAVED


@pytest.mark.parametrize("value, words", [("12", "is not WIDTHxHEIGHT"), ("1280x", "is not WIDTHxHEIGHT"),
                                          ("100x100", "must be from 640x480"), ("99999x800", "must be from"),
                                          ("-5x800", "is not WIDTHxHEIGHT")])
def test_a_bad_window_size_exits_2_with_one_line(capsys, value, words):
    assert app.main([f"--window-size={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vaegui: error: argument --window-size") and words in err
    assert len(err.splitlines()) == 1


def test_window_sizes_are_read_in_their_usual_spellings():
    assert app.window_size("1920x1080") == (1920, 1080)
    assert app.window_size(" 1280 X 800 ") == (1280, 800)


def test_a_mistyped_dataset_gets_a_suggestion_in_the_app_and_the_command_line(capsys, tmp_path):
    assert app.main(["--dataset", "mnsit"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'mnist'?" in err
    assert cli.main(["train", "--dataset", "Fashion_MNIST", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'fashion-mnist'?" in err
    assert app.main(["--dataset", "imagenet"]) == 2
    assert "did you mean" not in capsys.readouterr().err  # nothing close: no guess


def test_the_offline_note_says_its_conclusion_first(tmp_path):
    config, note = app.initial_config(None, app.parse_args(["--data-dir", str(tmp_path)]),
                                      probe=lambda name: "https://example.org/x: Name or service not known")
    first, details = note.split("\n", 1)
    assert config.data.dataset == "shapes"
    assert first == "Using built-in shapes: MNIST is not downloaded and the server did not answer"
    assert str(tmp_path) in details and "Name or service not known" in details

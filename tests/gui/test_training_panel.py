"""TrainingPanel: settings round-trip, what is editable when, requests, progress read-out."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaegui.core.progress import Progress
from vaegui.core.run_model import RunModel
from vaegui.gui.training_panel import SciSpinBox, TrainingPanel


@pytest.fixture
def panel(qtbot):
    run = RunModel()
    run.set_ready("cpu")
    p = TrainingPanel(run)
    qtbot.addWidget(p)
    return p


def _custom(folder: str = "/tmp/faces") -> RunConfig:
    return RunConfig(
        data=DataConfig(dataset=f"folder:{folder}", image_size=32, channels=3, train_limit=500,
                        data_dir="/data"),
        model=ModelConfig(family="conv", latent_dim=16, hidden=64, likelihood="gaussian-learned"),
        train=TrainConfig(epochs=7, batch_size=256, lr=3e-4, device="cpu", kl="mc", beta=2.5,
                          warmup_steps=1500, seed=5, threads=3))


def test_set_config_then_config_gives_the_same_settings(panel):
    cfg = _custom()
    panel.set_config(cfg)
    assert panel.config() == cfg  # incl. settings without a widget (hidden, limits, seed, data_dir)
    assert panel.dataset_combo.currentText() == "Folder: faces"
    panel.set_config(RunConfig())
    assert panel.config() == RunConfig()


def test_image_limits_stay_with_their_dataset(panel):
    panel.set_config(RunConfig().replace(data={"dataset": "shapes", "train_limit": 100, "test_limit": 50}))
    assert panel.config().data.train_limit == 100
    panel.dataset_combo.setCurrentIndex(panel.dataset_combo.findData("mnist"))
    assert (panel.config().data.train_limit, panel.config().data.test_limit) == (None, None)


def test_widgets_edit_the_config(panel):
    panel.dataset_combo.setCurrentIndex(panel.dataset_combo.findData("fashion-mnist"))
    panel.latent_spin.setValue(8)
    panel.likelihood_combo.setCurrentText("gaussian")
    panel.epochs_spin.setValue(3)
    panel.lr_spin.lineEdit().setText("2e-4")
    panel.lr_spin.interpretText()
    cfg = panel.config()
    assert (cfg.data.dataset, cfg.model.latent_dim, cfg.model.likelihood) == ("fashion-mnist", 8, "gaussian")
    assert cfg.train.epochs == 3 and cfg.train.lr == pytest.approx(2e-4)


def test_cpu_threads_are_auto_or_a_count(panel):
    assert panel.threads_spin.text() == "auto" and panel.config().train.threads == "auto"
    panel.threads_spin.setValue(2)
    assert panel.config().train.threads == 2
    panel.threads_spin.stepBy(-2)  # below 1 is auto
    assert panel.threads_spin.text() == "auto" and panel.config().train.threads == "auto"
    panel.run.start(panel.config())
    assert not panel.threads_spin.isEnabled()  # a run's count is set when it starts


def test_cpu_threads_setting_is_remembered(tmp_path, qtbot):
    from PySide6.QtCore import QSettings

    from vaegui.gui import settings as store

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    panel = TrainingPanel(RunModel())
    qtbot.addWidget(panel)
    panel.threads_spin.setValue(1)
    store.save_config(settings, panel.config())
    again = TrainingPanel(RunModel(), store.load_config(QSettings(str(tmp_path / "settings.ini"),
                                                      QSettings.Format.IniFormat)))
    qtbot.addWidget(again)
    assert again.threads_spin.value() == 1 and again.config().train.threads == 1


def test_running_disables_fixed_settings_but_not_beta(panel, qtbot):
    panel.run.start(panel.config())
    for w in (panel.dataset_combo, panel.family_combo, panel.latent_spin, panel.lr_spin,
              panel.batch_spin, panel.epochs_spin, panel.device_combo, panel.start_button):
        assert not w.isEnabled()
    assert panel.beta_spin.isEnabled() and panel.pause_button.isEnabled() and panel.stop_button.isEnabled()
    with qtbot.waitSignal(panel.betaChanged) as changed:
        panel.beta_spin.setValue(4.0)
    assert changed.args == [4.0]
    panel.run.run_finished(None)  # failed: the settings and Start come back
    assert panel.latent_spin.isEnabled() and panel.start_button.isEnabled()
    assert not panel.pause_button.isEnabled()


def test_set_config_does_not_announce_a_beta_change(panel, qtbot):
    with qtbot.assertNotEmitted(panel.betaChanged):
        panel.set_config(RunConfig().replace(train={"beta": 3.0}))
    assert panel.beta_spin.value() == 3.0


def test_buttons_request_start_pause_resume_stop(panel, qtbot):
    with qtbot.waitSignal(panel.startRequested):
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    panel.run.start(panel.config())
    with qtbot.waitSignal(panel.pauseRequested):
        qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    panel.run.pause()
    assert panel.pause_button.text() == "Resume"
    with qtbot.waitSignal(panel.resumeRequested):
        qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(panel.stopRequested):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)


def test_choosing_a_folder(panel, tmp_path):
    folder_index = panel.dataset_combo.findData("<choose folder>")
    panel.ask_folder = lambda: ""  # cancelled: back to the previous choice
    panel.dataset_combo.setCurrentIndex(folder_index)
    panel.dataset_combo.activated.emit(folder_index)
    assert panel.config().data.dataset == "mnist"
    assert not panel.channels_combo.isEnabled()
    panel.ask_folder = lambda: str(tmp_path)
    panel.dataset_combo.setCurrentIndex(folder_index)
    panel.dataset_combo.activated.emit(folder_index)
    assert panel.config().data.dataset == f"folder:{tmp_path}"
    assert panel.channels_combo.isEnabled() and panel.image_size_spin.isEnabled()


def test_map_source(panel, qtbot):
    assert panel.map_source() == ("test", None) and not panel.map_limit_spin.isEnabled()
    with qtbot.waitSignal(panel.mapSourceChanged) as changed:
        panel.map_split_combo.setCurrentIndex(panel.map_split_combo.findData("train"))
    assert changed.args == ["train", 10_000]
    panel.set_map_source("train", 70_000)
    assert panel.map_source() == ("train", 70_000) and panel.map_limit_spin.isEnabled()


def test_progress_read_out(panel):
    p = Progress(step=1500, total_steps=4690, steps_per_epoch=469, epochs=10,
                 new_steps=np.zeros(0), new_losses=np.zeros((0, 3)), new_kl_weights=np.zeros(0),
                 kl_weight=1.0,
                 images_per_s=28123.4, images_seen=192000, train_seconds=7.0, seconds_left=95.0,
                 device="cuda (NVIDIA H200)", threads=2)
    panel.run.start(panel.config())
    panel.run.add_progress(p)
    text = panel.progress_label.text()
    for part in ("Epoch 4/10", "step 1,500/4,690", "28,123 img/s", "2 threads", "1:35 left"):
        assert part in text
    assert panel.progress_bar.value() == round(1000 * 1500 / 4690)
    assert "cuda (NVIDIA H200)" in panel.device_label.text()


def test_sci_spin_box_reads_and_writes_scientific_numbers(qtbot):
    box = SciSpinBox(1e-7, 10.0)
    qtbot.addWidget(box)
    box.setValue(3e-4)
    assert box.text() == "0.0003"
    box.lineEdit().setText("1e-5")
    box.interpretText()
    assert box.value() == pytest.approx(1e-5)
    box.stepBy(1)
    assert box.value() == pytest.approx(2e-5)


def test_settings_at_the_engines_bounds_are_not_clamped(qtbot):
    """A checkpoint's settings come back exactly (latent dim 600 used to be cut to 512, which made
    Start throw the opened model away)."""
    from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from vaegui.gui.training_panel import TrainingPanel
    cfg = RunConfig(DataConfig(dataset="shapes", image_size=600),
                    ModelConfig(latent_dim=600),
                    TrainConfig(epochs=500_000, batch_size=500_000, lr=1e-9, beta=5000.0,
                                warmup_steps=3_000_000_000))
    panel = TrainingPanel(RunModel(), cfg)
    qtbot.addWidget(panel)
    assert panel.config() == cfg

"""The map's "How many" setting goes up to all the training images ("All" = no limit), and the
setting round-trips through the panel."""

from vaegui.core.run_model import RunModel
from vaegui.gui.training_panel import TrainingPanel


def test_how_many_goes_up_to_all_the_images(qtbot):
    panel = TrainingPanel(RunModel())
    qtbot.addWidget(panel)
    panel.map_split_combo.setCurrentIndex(panel.map_split_combo.findData("train"))
    panel.map_limit_spin.setValue(1_000_000)
    assert panel.map_source() == ("train", 1_000_000)
    panel.map_limit_spin.setValue(0)
    assert panel.map_limit_spin.text() == "All" and panel.map_source() == ("train", None)
    panel.set_map_source("train", 250_000)
    assert panel.map_source() == ("train", 250_000)
    panel.set_map_source("train", None)
    assert panel.map_source() == ("train", None)
    panel.set_map_source("test", None)
    assert panel.map_source() == ("test", None)

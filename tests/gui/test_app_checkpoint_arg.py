"""`vaegui --checkpoint PATH`: a checkpoint file or a run folder (its latest checkpoint), as
`vaegui train --resume`, `vaegui eval` and `vaegui export` take them."""

from __future__ import annotations

from PIL import Image

from vaegui.gui import app


def test_a_run_folder_opens_its_latest_checkpoint(qapp, train_shapes, tmp_path, capsys):
    run = train_shapes(tmp_path / "run")
    capsys.readouterr()
    shot = tmp_path / "shot.png"
    assert app.main(["--checkpoint", str(run), "--screenshot", str(shot)]) == 0
    assert "error" not in capsys.readouterr().err
    with Image.open(shot) as image:
        assert image.width > 400 and image.height > 300


def test_a_folder_that_is_not_a_run_is_one_line_and_exit_code_2(qapp, tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    assert app.main(["--checkpoint", str(tmp_path / "photos")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"vaegui: error: run folder {tmp_path / 'photos'}:") and len(err.splitlines()) == 1

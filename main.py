"""Launch the vaegui desktop app (see `python main.py --help`)."""

from vaegui.gui.app import main

if __name__ == "__main__":
    raise SystemExit(main())

"""Launch the vaegui desktop app (see `python main.py --help`)."""

import sys

if __name__ == "__main__":
    try:
        from vaegui.cli import EXIT_INTERRUPTED, main
    except KeyboardInterrupt:  # Ctrl-C while Python is still importing
        sys.stderr.write("vaegui: interrupted\n")
        raise SystemExit(130) from None
    try:
        raise SystemExit(main(["gui", *sys.argv[1:]]))
    except KeyboardInterrupt:
        sys.stderr.write("vaegui: interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None

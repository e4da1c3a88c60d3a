"""Launch the vaegui desktop app (see `python main.py --help`)."""

import sys

if __name__ == "__main__":
    try:
        from vaegui.cli import main
    except KeyboardInterrupt:  # Ctrl-C while Python is still importing
        sys.stderr.write("vaegui: interrupted\n")
        raise SystemExit(130) from None
    # The app, whatever the first argument; through the command line's main (with no argument
    # list) so that a Ctrl-C anywhere in start-up ends as the command line's do.
    sys.argv[1:1] = ["gui"]
    raise SystemExit(main())

"""``python -m vaegui``: the command line, so that ``torchrun ... -m vaegui train ...`` works."""

from .cli import main

raise SystemExit(main())

"""``python -m pertspectra.cli``."""

from . import main

main()

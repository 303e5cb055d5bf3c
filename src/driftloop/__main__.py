"""``python -m driftloop`` is the same as the ``driftloop`` command."""

from driftloop.cli import main

main()

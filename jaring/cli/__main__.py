"""``python -m jaring.cli``: the same as the ``jaring`` console script."""

from jaring.cli import main

main()

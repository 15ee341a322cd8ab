"""`python -m landfall.cli`: the `landfall` command."""

from landfall.cli import entry

entry()

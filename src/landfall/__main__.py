from landfall.cli import entry

entry()

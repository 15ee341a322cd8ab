"""The `landfall` command: a thin adapter over `landfall.Pipeline`.

The group and its global options are in `app`; the commands, by what they do, in `loading` (`init`, `ingest`,
`process`), `running` (`up`, `worker`, `serve`), `runs` (`runs`, `dlq`), `catalog` (`tables`, `quarantine`,
`crawl`, `query`) and `demo`. `main` imports a command's module when the command is asked for (`app.COMMANDS`).
"""

from landfall.cli.app import Ctx, entry, main

__all__ = ["Ctx", "entry", "main"]

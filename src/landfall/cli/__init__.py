"""The `landfall` command: a thin adapter over `landfall.Pipeline`.

The group and its global options are in `app`; the commands, by what they do, in `loading` (`init`, `ingest`,
`process`), `running` (`up`, `worker`, `serve`), `runs` (`runs`, `dlq`), `catalog` (`tables`, `quarantine`,
`crawl`, `query`) and `demo`. Importing this package registers them all on `main`.
"""

from landfall.cli import catalog, demo, loading, running, runs  # noqa: F401  (each registers its commands)
from landfall.cli.app import Ctx, entry, main

__all__ = ["Ctx", "entry", "main"]

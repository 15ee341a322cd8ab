"""Zones: one `Storage` object per zone (landing, tables, quarantine) or table folder, the only place that turns
zone keys into filesystem calls (fsspec's for object stores and `memory://`, `os` for a local folder).

- `zone.py`: `Storage`, one zone (keys, reading, fetching for an engine, publishing, deleting, scratch space);
- `zones.py`: `Zones`, the lake's zones built from the settings;
- `options.py`: `StorageOptions` (credentials, endpoint) and the filesystem of a URL;
- `local.py`: a local folder's filesystem calls, answered as fsspec's `LocalFileSystem` would;
- `faults.py`: a store that cannot be reached (`unreachable`, `StorageUnavailable`) told from a bad file.
"""

from landfall.storage.faults import ZoneRefused, unreachable
from landfall.storage.options import (
    DEFAULT_OPTIONS,
    StorageOptions,
    is_local,
    protocol_of,
    register_filesystem,
)
from landfall.storage.zone import Storage, mtime_of
from landfall.storage.zones import Zones

__all__ = [
    "DEFAULT_OPTIONS",
    "Storage",
    "StorageOptions",
    "ZoneRefused",
    "Zones",
    "is_local",
    "mtime_of",
    "protocol_of",
    "register_filesystem",
    "unreachable",
]

"""The lake's zones (`landing`, `tables`, `quarantine`) as `Storage` objects built from the settings."""

from __future__ import annotations

from typing import Any

from landfall.storage.options import StorageOptions
from landfall.storage.zone import Storage


class Zones:
    """The lake's zones as `Storage` objects, built from the settings: `landing`, `tables`, `quarantine`, and any
    table's folder by its cataloged location (`at`)."""

    def __init__(self, settings: Any) -> None:
        self.options: StorageOptions = settings.storage_options
        self.scratch_dir: str | None = settings.scratch_root
        self.landing = Storage(settings.landing_url, self.options, zone="landing", scratch_dir=self.scratch_dir)
        self.tables = Storage(settings.tables_url, self.options, zone="tables", scratch_dir=self.scratch_dir)
        self.quarantine = Storage(
            settings.quarantine_url, self.options, zone="quarantine", scratch_dir=self.scratch_dir
        )

    def at(self, location: str) -> Storage:
        """The storage of a table folder by its cataloged location (a local path or a URL)."""
        for zone in (self.tables, self.quarantine):
            if location == zone.url or location.startswith(zone.url + "/"):
                return zone.child(location[len(zone.url) + 1 :]) if location != zone.url else zone
        return Storage(location, self.options, scratch_dir=self.scratch_dir)

    def table(self, name: str) -> Storage:
        return self.tables.child(name)

    def quarantined(self, name: str) -> Storage:
        return self.quarantine.child(name)

    def all(self) -> list[Storage]:
        return [self.landing, self.tables, self.quarantine]

    def check(self) -> None:
        """Reach every remote zone once (see `Storage.check`)."""
        for zone in self.all():
            zone.check()

    def register_with(self, con: Any, locations: list[str] = ()) -> None:  # type: ignore[assignment]
        """Let a DuckDB connection read the zones' (and these locations') URLs through fsspec."""
        for storage in [self.tables, self.quarantine, *(self.at(loc) for loc in locations)]:
            storage.register_with(con)

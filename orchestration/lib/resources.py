"""Resources: short nouns the assets ask for."""

from __future__ import annotations

import dagster as dg

from crimelake.config import Settings


class LakeResource(dg.ConfigurableResource):
    """The crimelake home: landing folder, Delta lake, warehouse. Empty `home` means `CRIMELAKE_HOME` (or ./var)."""

    home: str = ""

    def settings(self) -> Settings:
        return Settings.from_env(self.home or None).prepare()

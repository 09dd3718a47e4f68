"""An optional background map: tiles from a server the deployment names (none by default, so the map needs no
internet). `CRIMELAKE_TILE_URL` is an XYZ template such as `https://tiles.example.org/{z}/{x}/{y}.png`;
`CRIMELAKE_TILE_ATTRIBUTION` is the credit its licence asks for (OpenStreetMap-based tiles need
"© OpenStreetMap contributors")."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class TileServer:
    url: str
    attribution: str

    @property
    def origin(self) -> str:
        # Leaflet's {s} subdomain placeholder becomes a CSP wildcard host.
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"

    def public(self) -> dict:
        return {"url": self.url, "attribution": self.attribution}


def tile_server() -> TileServer | None:
    url = os.environ.get("CRIMELAKE_TILE_URL", "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"CRIMELAKE_TILE_URL {url!r}: expected an http(s) URL template")
    missing = [p for p in ("{z}", "{x}", "{y}") if p not in url]
    if missing:
        raise ValueError(f"CRIMELAKE_TILE_URL {url!r}: the template lacks {', '.join(missing)}")
    return TileServer(url, os.environ.get("CRIMELAKE_TILE_ATTRIBUTION", "").strip() or parts.netloc)

"""Who may see what on the map and its API: roles, API keys and the checks every request passes.

Roles, from least to most:
- `public`: anyone without a key. Aggregates only, at H3 resolution 7 (about 5 km²), with the disclosure rules
  applied (counts below 5 suppressed, the rest rounded to 5). No street-level cells, no incidents.
- `analyst`: one force's detail: street-level (resolution 9) counts, forecasts, emerging hot spots and the
  incidents of a cell, for their own force only; the public view elsewhere.
- `auditor`: street-level detail of every force, prediction traces and the audit log.
- `admin`: everything, including the list of keys (never the keys themselves).

Keys are stored as SHA-256 digests, never in clear, in `<home>/access/api_keys.yaml` (written by
`crimelake access add`), or given in the environment as `CRIMELAKE_API_KEYS` (YAML or JSON with the same
`keys:` list, where an entry may carry `key:` in clear, for secrets injected by a deployment). The file is
re-read when it changes, so a revoked key stops working without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from crimelake.config import Settings
from crimelake.reference.forces import FORCES

FORCE_SLUGS = frozenset(f.slug for f in FORCES)

ROLES = ("public", "analyst", "auditor", "admin")
KEY_PREFIX = "ck_"


class AccessError(ValueError):
    """A keys file or entry that cannot be used, named with where it came from."""


@dataclass(frozen=True)
class Principal:
    """The caller of one request."""

    name: str | None
    role: str
    force: str | None = None

    @property
    def is_public(self) -> bool:
        return self.role == "public"

    def may_see_detail(self, force: str | None) -> bool:
        """Street-level cells, emerging hot spots and incidents of `force` (None: every force at once)."""
        if self.role in ("auditor", "admin"):
            return True
        return self.role == "analyst" and force is not None and force == self.force

    @property
    def can_trace(self) -> bool:
        return self.role in ("auditor", "admin")

    @property
    def can_audit(self) -> bool:
        return self.role in ("auditor", "admin")

    def describe(self) -> str:
        if self.is_public:
            return "public"
        return f"{self.name} ({self.role}{', ' + self.force if self.force else ''})"


PUBLIC = Principal(None, "public")


@dataclass(frozen=True)
class KeyEntry:
    name: str
    role: str
    force: str | None
    sha256: str
    created_at: str | None = None
    origin: str = ""


def keys_file(settings: Settings) -> Path:
    return Path(os.environ.get("CRIMELAKE_API_KEYS_FILE") or settings.home / "access" / "api_keys.yaml")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _entry(raw: object, origin: str, index: int) -> KeyEntry:
    where = f"{origin}, keys[{index}]"
    if not isinstance(raw, dict):
        raise AccessError(f"{where}: expected a mapping with name, role and key or sha256")
    name, role, force = raw.get("name"), raw.get("role"), raw.get("force") or None
    if not name or not isinstance(name, str):
        raise AccessError(f"{where}: missing name")
    if role not in ROLES[1:]:
        raise AccessError(f"{where} ({name}): role must be one of {', '.join(ROLES[1:])}, not {role!r}")
    if role == "analyst" and force not in FORCE_SLUGS:
        raise AccessError(f"{where} ({name}): an analyst key needs the slug of a force of England and Wales, "
                          f"not {force!r}")
    if role != "analyst" and force is not None:
        raise AccessError(f"{where} ({name}): only analyst keys are tied to a force")
    sha = raw.get("sha256") or (digest(str(raw["key"])) if raw.get("key") else None)
    if not sha or len(str(sha)) != 64:
        raise AccessError(f"{where} ({name}): needs `sha256` (64 hex digits) or `key`")
    return KeyEntry(name, role, force, str(sha).lower(), raw.get("created_at"), origin)


def _parse(text: str, origin: str) -> list[KeyEntry]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise AccessError(f"{origin}: not valid YAML or JSON: {e}") from e
    items = doc.get("keys", []) if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise AccessError(f"{origin}: expected a top-level `keys:` list")
    entries = [_entry(raw, origin, i) for i, raw in enumerate(items)]
    names = [e.name for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AccessError(f"{origin}: key names used twice: {', '.join(dupes)}")
    return entries


def _read(path: Path) -> list[KeyEntry]:
    return _parse(path.read_text(), str(path)) if path.exists() else []


class KeyRing:
    """The known keys, from the keys file (re-read when it changes) and the environment."""

    def __init__(self, settings: Settings):
        self.path = keys_file(settings)
        self._stamp: tuple[float, int] | None = None
        self._file_entries: list[KeyEntry] = []
        env = os.environ.get("CRIMELAKE_API_KEYS")
        self._env_entries = _parse(env, "environment variable CRIMELAKE_API_KEYS") if env else []

    def entries(self) -> list[KeyEntry]:
        if self.path.exists():
            st = self.path.stat()
            stamp = (st.st_mtime, st.st_size)
            if stamp != self._stamp:
                self._file_entries = _read(self.path)
                self._stamp = stamp
        else:
            self._file_entries, self._stamp = [], None
        return self._file_entries + self._env_entries

    def resolve(self, key: str) -> Principal | None:
        wanted = digest(key)
        for e in self.entries():
            if hmac.compare_digest(e.sha256, wanted):
                return Principal(e.name, e.role, e.force)
        return None


def add_key(settings: Settings, name: str, role: str, force: str | None = None) -> str:
    """Create a key, store its digest in the keys file and return the key (shown once, never stored)."""
    path = keys_file(settings)
    existing = _read(path)
    if any(e.name == name for e in existing):
        raise AccessError(f"{path}: a key named {name!r} exists; revoke it first")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    entry = {"name": name, "role": role, "sha256": digest(key), "created_at": datetime.now(UTC).isoformat()}
    if force:
        entry["force"] = force
    _entry(entry, "new key", len(existing))
    rows = [_as_dict(e) for e in existing] + [entry]
    _write(path, rows)
    return key


def revoke_key(settings: Settings, name: str) -> None:
    path = keys_file(settings)
    existing = _read(path)
    if not any(e.name == name for e in existing):
        raise AccessError(f"{path}: no key named {name!r}")
    _write(path, [_as_dict(e) for e in existing if e.name != name])


def list_keys(settings: Settings) -> list[KeyEntry]:
    return KeyRing(settings).entries()


def _as_dict(e: KeyEntry) -> dict:
    d = {"name": e.name, "role": e.role, "sha256": e.sha256, "created_at": e.created_at}
    if e.force:
        d["force"] = e.force
    return d


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# crimelake API keys: SHA-256 digests only. Manage with `crimelake access`.\n"
                   + yaml.safe_dump({"keys": rows}, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)

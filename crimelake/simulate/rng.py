"""Random streams: one numpy Generator per purpose, seeded from the run seed and stable keys.

Keys are the force's position in the reference list, month indices and fixed stream numbers, never the order in
which forces were requested, so a force's data does not change when other forces are added to a run.
"""

from __future__ import annotations

import zlib

import numpy as np

from crimelake.reference.forces import FORCES

# Stream numbers keep the purposes apart.
WORLD, DYNAMICS, STREET, OUTCOMES, STOP_SEARCH, RMS, COUNCIL, SOCIAL_CARE, DEFECTS, HOTSPOTS, GAPS = range(11)

_FORCE_INDEX = {f.slug: i for i, f in enumerate(FORCES)}


def force_index(slug: str) -> int:
    return _FORCE_INDEX[slug]


def key_of(text: str) -> int:
    """A stable integer for a name (str hashes change between interpreter runs)."""
    return zlib.crc32(text.encode())


def stream(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *map(int, keys)]))

"""Whether the force a row names is the force whose file it came in.

data.police.uk writes each force's display name ("Metropolitan Police Service", "Devon & Cornwall Police") into
"Falls within"; names are compared after folding case, "&" to "and" and punctuation to spaces, so a variant
spelling of the same force is not taken for another. A territorial force's file holds its own area's rows only;
British Transport Police polices the railways of every force area, so its file may name any force of England and
Wales.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crimelake.reference.forces import FORCES, force_by_slug


def fold(name: str) -> str:
    """A force name reduced to what tells forces apart: lower case, "&" as "and", words only."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", name.casefold().replace("&", " and ")).split())


@cache
def _known() -> frozenset[str]:
    return frozenset(fold(f.name) for f in FORCES)


@dataclass(frozen=True)
class WrongForce:
    mask: np.ndarray  # True where the row names another force than the file's
    why: str  # the end of the reason, after the value


def wrong_force(names: pa.Array, slug: str) -> WrongForce:
    """Rows of the file of force `slug` whose force name (`names`, null where missing) is not that force. Few
    distinct names occur in a file, so each is folded once."""
    force = force_by_slug(slug)
    encoded = pc.dictionary_encode(names)
    distinct = encoded.dictionary.to_pylist()
    if force.is_territorial:
        ok = [fold(n) == fold(force.name) for n in distinct]
        why = f"is not the file's force, {force.name} ({slug})"
    else:
        ok = [fold(n) in _known() for n in distinct]
        why = f"names no police force of England and Wales, in a file of {force.name} ({slug})"
    bad_code = np.flatnonzero(~np.asarray(ok, dtype=bool))
    if not len(bad_code):
        return WrongForce(np.zeros(len(names), dtype=bool), why)
    idx = encoded.indices
    mask = pc.fill_null(pc.is_in(idx, pa.array(bad_code, idx.type)), False).to_numpy(zero_copy_only=False)
    return WrongForce(mask, why)

"""Interventions with a known effect, injected into a simulated panel of H3 cell-month counts: the ground truth
that the impact evaluation in :mod:`ml.interventions` is measured against.

The panel: every resolution-9 cell within ``radius`` rings of a centre, split into two forces by longitude. Each
cell has a long-run level (gamma, so a few cells are hot) and a mix of crime types; each type has its own
seasonality; each force-month has a shock common to its cells; each cell drifts with its own small trend and a
persistent AR(1) deviation (crime that lasts a few months); counts are negative binomial around all that (a gamma
mix per cell-month, as the street-level simulator uses). ``all_crime`` is the sum of the types.

Interventions: areas centred on cells hot in the targeted group, one cell or a cell and its ring, far enough
apart that no area's displacement ring or comparison exclusion zone touches another's. During the intervention
the expected count of the targeted group in the area is multiplied by ``1 + effect``; a ``displacement`` share
of the crimes so prevented is added to the expected counts of the ring cells (in proportion to their own level).
"""

from __future__ import annotations

from dataclasses import dataclass

import h3
import numpy as np
import pandas as pd

from ml.cell_months import month_add
from ml.interventions import KINDS, Intervention, displacement_ring, exclusion_zone
from ml.panel import GROUPS

TYPES = ("asb", "violence", "theft", "weapons", "other")  # all_crime is their sum
TYPE_SHARE = np.array([0.30, 0.30, 0.25, 0.03, 0.12])
CENTRE = h3.latlng_to_cell(53.7632, -2.7031, 9)  # Preston
TRUTH_COLUMNS = ["intervention_id", "group", "effect", "true_rate_ratio", "expected_prevented_per_month",
                 "displacement_share", "expected_displaced_per_month", "ring"]


@dataclass
class CountPanel:
    """Cells x months counts per forecast group, with each cell's force: the shape :mod:`ml.interventions`
    reads (as :class:`ml.panel.Panel` is)."""

    cells: np.ndarray
    months: list[str]
    counts: dict[str, np.ndarray]
    force: np.ndarray


def _expected(rng: np.random.Generator, n: int, months: int, *, level: float, trend_sd: float, persistence: float,
              persistent_sd: float) -> np.ndarray:
    """Expected counts, (types, cells, months), before the cell-month gamma mix."""
    base = rng.gamma(0.5, level / 0.5, size=n)
    mix = rng.dirichlet(TYPE_SHARE * 20, size=n).T  # (types, cells)
    t = np.arange(months)
    season = np.exp(rng.uniform(0.05, 0.2, (len(TYPES), 1)) * np.cos(2 * np.pi * (t - rng.uniform(0, 12,
                                                                                                  (len(TYPES), 1))) / 12))
    trend = np.exp(rng.normal(0, trend_sd, (n, 1)) * (t - months / 2))
    ar = np.zeros((n, months))
    innovation = persistent_sd * np.sqrt(1 - persistence**2)
    ar[:, 0] = rng.normal(0, persistent_sd, n)
    for k in range(1, months):
        ar[:, k] = persistence * ar[:, k - 1] + rng.normal(0, innovation, n)
    return base[None, :, None] * mix[:, :, None] * season[:, None, :] * (trend * np.exp(ar))[None]


def simulate_interventions(seed: int, n_interventions: int = 8, *, effect: float = -0.2, displacement: float = 0.0,
                           ring: int = 1, radius: int = 24, months: int = 36, first_month: str = "2022-01",
                           level: float = 2.0, shape: float = 8.0, trend_sd: float = 0.003,
                           persistence: float = 0.4, persistent_sd: float = 0.15, force_shock_sd: float = 0.05,
                           diverging_trend: float = 0.0) -> tuple[CountPanel, list[Intervention], pd.DataFrame]:
    """A panel, the interventions placed in it, and their truth (``TRUTH_COLUMNS``, one row per intervention
    and targeted group). ``effect`` is the multiplicative change (-0.2: a fifth fewer crimes; 0: none).
    ``diverging_trend`` gives each treated area a trend of its own in the targeted group (log rate per month, over
    the whole panel, on top of the effect): the case the pre-trend check must catch."""
    if not effect > -1:
        raise ValueError(f"effect must be above -1 (a multiplicative change), not {effect}")
    if not 0 <= displacement <= 1:
        raise ValueError(f"displacement is a share of the prevented crimes, in [0, 1], not {displacement}")
    rng = np.random.default_rng(seed)
    cells = np.asarray(sorted(h3.grid_disk(CENTRE, radius)), dtype=object)
    n = cells.size
    index = pd.Index(cells)
    lng = np.array([h3.cell_to_latlng(c)[1] for c in cells])
    force = np.where(lng < np.median(lng), "force-west", "force-east").astype(object)
    labels = [month_add(first_month, k) for k in range(months)]
    mu = _expected(rng, n, months, level=level, trend_sd=trend_sd, persistence=persistence,
                   persistent_sd=persistent_sd)
    for f in np.unique(force):
        mu[:, force == f, :] *= np.exp(rng.normal(0, force_shock_sd, (len(TYPES), 1, months)))

    interventions, truth, zones = [], [], set()
    order = rng.permutation(n)
    for k in range(n_interventions):
        group = GROUPS[rng.choice(len(GROUPS), p=[0.3, 0.2, 0.2, 0.2, 0.1])]
        types = list(range(len(TYPES))) if group == "all_crime" else [TYPES.index(group)]
        hot = mu[types].sum(axis=0).mean(axis=1)
        threshold = np.quantile(hot, 0.90)
        size = int(rng.integers(0, 2))
        spot = None
        for i in order:
            if hot[i] < threshold:
                continue
            area = frozenset(h3.grid_disk(cells[i], size))
            # Room for this area's comparison exclusion zone, and a cell more so that zones never touch.
            zone = exclusion_zone(area, ring + 1)
            where = index.get_indexer(list(zone))
            if zone & zones or where.min() < 0 or len(set(force[where])) > 1:
                continue
            spot = (i, area, zone)
            break
        if spot is None:
            raise ValueError(f"no room for intervention {k + 1} of {n_interventions}: use a larger radius")
        i, area, zone = spot
        zones |= zone
        length = int(rng.integers(6, 13))
        start = int(rng.integers(24, months - length + 1))
        a_rows = index.get_indexer(list(area))
        b_rows = index.get_indexer(sorted(displacement_ring(area, ring)))
        window = slice(start, start + length)
        prevented = -effect * mu[np.ix_(types, a_rows)][..., window].sum(axis=(0, 1))  # per month
        mu[np.ix_(types, a_rows, np.arange(start, start + length))] *= 1 + effect
        if diverging_trend:
            mu[np.ix_(types, a_rows)] *= np.exp(diverging_trend * (np.arange(months) - start))
        if displacement > 0 and effect < 0:
            weight = mu[np.ix_(types, b_rows)][..., window]
            mu[np.ix_(types, b_rows, np.arange(start, start + length))] += (
                displacement * prevented * weight / weight.sum(axis=(0, 1)))
        iv = Intervention(id=f"sim-{seed}-{k + 1}", kind=KINDS[int(rng.integers(len(KINDS)))], area=area,
                          force=str(force[i]), start=labels[start], end=labels[start + length - 1],
                          agency="simulated", groups=(group,), description=f"{group} effect {effect:+.0%}")
        interventions.append(iv)
        truth.append((iv.id, group, effect, 1 + effect, prevented.mean(), displacement,
                      displacement * prevented.mean() if effect < 0 else 0.0, ring))
    # Negative binomial: a gamma mix with mean 1 per cell-month and type, then Poisson.
    lam = mu * rng.gamma(shape, 1 / shape, mu.shape)
    by_type = rng.poisson(lam).astype(float)
    counts = {"all_crime": by_type.sum(axis=0), **{t: by_type[j] for j, t in enumerate(TYPES) if t in GROUPS}}
    panel = CountPanel(cells, labels, {g: counts[g] for g in GROUPS}, force)
    return panel, interventions, pd.DataFrame(truth, columns=TRUTH_COLUMNS)

"""The own-history features: window means over known months, and the exponentially weighted mean's bounded reach."""

import warnings

import numpy as np
import pytest

from ml.features import EWMA_MONTHS, _window_mean, _window_means, ewma, nan_weighted_mean


def _history(rows: int, months: int, missing: float, dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hist = rng.poisson(3.0, size=(rows, months)).astype(dtype)
    hist[rng.random(hist.shape) < missing] = np.nan
    hist[: rows // 10] = np.nan  # some rows never observed
    return hist


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("months", [1, 2, 5, 12, 30])
@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_window_means_equal_numpys_nanmean(dtype, months, missing):
    hist = _history(400, months, missing, dtype)
    if missing == 0.0:
        hist[: 40] = 1.0
    means = _window_means(hist, (3, 6, 12))
    for k, got in means.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanmean(hist[:, -k:], axis=1)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(_window_mean(hist, k), want)


def test_window_means_of_no_months_are_unknown():
    got = _window_means(np.zeros((3, 0), np.float32), (3, 12))
    assert all(np.isnan(v).all() and len(v) == 3 for v in got.values())


def test_ewma_reads_only_its_last_months():
    hist = _history(300, 40, 0.2, np.float32, seed=1)
    base = ewma(hist)
    changed = hist.copy()
    changed[:, : 40 - EWMA_MONTHS] = 1000.0  # months beyond its reach
    np.testing.assert_array_equal(ewma(changed), base)
    changed[:, 40 - EWMA_MONTHS] = 1000.0  # the oldest month it reads
    known = ~np.isnan(hist[:, 40 - EWMA_MONTHS])
    assert (ewma(changed)[known] > base[known]).all()


def test_ewma_is_the_weighted_mean_of_known_months():
    hist = _history(200, 10, 0.3, np.float64, seed=2)
    w = 0.5 ** (np.arange(10)[::-1] / 2.0)
    known = ~np.isnan(hist)
    want = np.array([(h[k] * w[k]).sum() / w[k].sum() if k.any() else np.nan
                     for h, k in zip(hist, known, strict=True)])
    np.testing.assert_allclose(ewma(hist), want, rtol=1e-12)
    assert np.isnan(ewma(hist)[: 20]).all()
    np.testing.assert_allclose(nan_weighted_mean(np.ones((2, 3)), np.array([1.0, 2.0, 3.0])), [1.0, 1.0])


def test_window_means_of_whole_numbers_are_fractions():
    got = _window_means(np.array([[1, 2], [0, 1]], dtype=np.int64), (2,))[2]
    np.testing.assert_array_equal(got, [1.5, 0.5])


def test_feature_frames_are_indexed_by_one_cell_index_per_panel():
    from ml.features import build_features, cell_index
    from ml.panel import Panel
    from tests.test_ml_gaps import two_forces

    counts, cells, _, _ = two_forces()
    p = Panel.from_frames(counts, cells)
    a, b = build_features(p, "all_crime", p.n_months - 1), build_features(p, "all_crime", p.n_months - 2)
    assert cell_index(p) is cell_index(p)
    for frame in (a, b):
        assert frame.index.equals(cell_index(p)) and frame.index.name == "h3_cell"
        assert list(frame.index) == list(p.cells)

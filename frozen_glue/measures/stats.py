"""Significance: the primary example-and-seed-level test (the hierarchical bootstrap: hierarchical_distribution,
read through bootstrap_interval and bootstrap_p), across examples (exact McNemar, Wilcoxon), across seeds only
(Welch's t-test), and the Holm correction for a family of tests. Thin wrappers over scipy / statsmodels so the
numbers are theirs. Must not know about runs or files."""

import gc
import math
import warnings

import numpy as np
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from frozen_glue.core.metrics import get_metric


def mean_std(values):
    """Mean and SAMPLE standard deviation (ddof=1; NaN for a single seed) and n."""
    values = np.asarray(values, dtype=float)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return float(np.mean(values)), std, len(values)


def welch_p(a, b):
    """Two-sided Welch t-test p-value of two models' per-seed scores (NaN when a side has < 2 seeds)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    with warnings.catch_warnings():  # identical seeds (std 0) make scipy warn; the p it returns says it all
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(sps.ttest_ind(a, b, equal_var=False).pvalue)


def mcnemar_exact(only_a_right: int, only_b_right: int) -> float:
    """Exact McNemar p-value: a binomial test on the discordant pairs."""
    table = [[0, only_a_right], [only_b_right, 0]]
    return float(mcnemar(table, exact=True).pvalue)


def wilcoxon_p(errors_a, errors_b) -> float:
    """Two-sided Wilcoxon signed-rank p of paired errors (NaN when the two are identical everywhere)."""
    if not np.any(np.subtract(errors_a, errors_b) != 0):
        return math.nan
    return float(sps.wilcoxon(errors_a, errors_b).pvalue)


def resamples_for(family_size: int, n_resamples: int = 2000, alpha: float = 0.05) -> int:
    """Bootstrap resamples a family of `family_size` tests needs. Holm tests the smallest p at alpha / m, and a
    bootstrap p cannot go below 2 / (R + 1): R = max(n_resamples, 20 m / alpha - 1) leaves at least 10 resamples
    (expected) in each tail at that level, so a verdict is never out of reach because of R alone."""
    return max(int(n_resamples), math.ceil(20 * max(family_size, 1) / alpha) - 1)


def bootstrap_p(dist) -> float:
    """Two-sided bootstrap p of 'no difference': 2 min((1 + #{d <= 0}) / (R + 1), (1 + #{d >= 0}) / (R + 1)),
    at most 1 and never 0 (Davison & Hinkley's +1); NaN without a finite resample."""
    dist = np.asarray(dist, dtype=float)
    dist = dist[np.isfinite(dist)]
    r = len(dist)
    if not r:
        return math.nan
    return float(min(1.0, 2 * min((1 + np.sum(dist <= 0)) / (r + 1), (1 + np.sum(dist >= 0)) / (r + 1))))


def bootstrap_interval(dist, alpha: float):
    """The two-sided (1 - alpha) percentile interval that agrees with bootstrap_p at every level: the k-th smallest
    and k-th largest resample with k = floor(alpha (R + 1) / 2), so that low > 0 or high < 0 exactly when
    bootstrap_p(dist) <= alpha ((-inf, inf) when R is too small for that level: k = 0)."""
    dist = np.sort(np.asarray(dist, dtype=float)[np.isfinite(dist)])
    r = len(dist)
    k = math.floor(alpha * (r + 1) / 2 + 1e-9)
    if not r:
        return math.nan, math.nan
    if k < 1:
        return -math.inf, math.inf
    return float(dist[k - 1]), float(dist[r - k])


def hierarchical_distribution(metric_name, seeds_a, seeds_b, gold, n_resamples=2000, seed=0, batch=100):
    """(observed difference, bootstrap distribution) of the seed-mean main metric of A minus B with a two-level
    bootstrap: each resample draws dev examples with replacement (the same for both models: paired) and, within
    each model, its seeds with replacement, so both the dev set being a sample and the seed-to-seed noise count.
    seeds_a, seeds_b: (seeds x examples) predictions; gold: (examples,). Non-finite resamples are dropped."""
    metric = get_metric(metric_name).fast
    a, b, gold = (np.asarray(x, dtype=float) for x in (seeds_a, seeds_b, gold))
    a, b = np.atleast_2d(a), np.atleast_2d(b)

    def seed_mean(preds, g):  # preds (..., seeds, n), g (..., n): the metric of each seed, averaged over seeds
        return np.mean(metric(preds, np.broadcast_to(g[..., None, :], preds.shape)), axis=-1)

    # a resample of one class (or one constant value) has an undefined MCC / Pearson: the fast forms answer it as
    # the library does, without a warning; a NaN is dropped below
    observed = float(seed_mean(a, gold) - seed_mean(b, gold))
    rng = np.random.default_rng(seed)
    n, dist = len(gold), []
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        rows = rng.integers(0, n, (size, n))
        pick_a = rng.integers(0, len(a), (size, len(a)))
        pick_b = rng.integers(0, len(b), (size, len(b)))
        g = gold[rows]
        dist.append(seed_mean(a[pick_a[:, :, None], rows[:, None, :]], g)
                    - seed_mean(b[pick_b[:, :, None], rows[:, None, :]], g))
    dist = np.concatenate(dist) if dist else np.empty(0)
    return observed, dist[np.isfinite(dist)]


def _holm(p, alpha: float):
    """statsmodels' Holm step-down: (reject, adjusted p). Its Holm branch ends with gc.collect(), which walks every
    object of the process (0.13 s a family in a process holding torch and a model: 19 of 45 s of summarizing in the
    suite). The objects alive before the call are frozen (gc.freeze: left out of collections) for its duration, so
    the collection walks only the call's own."""
    gc.freeze()
    try:
        reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    finally:
        gc.unfreeze()
    return reject, adjusted


def holm(p_values):
    """Holm-adjusted p-values (family-wise error), NaNs passed through."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = _holm(p[ok], 0.05)[1]
    return out


def holm_levels(p_values, alpha: float = 0.05):
    """(rejected, level) per test of a family under Holm's step-down procedure (statsmodels' rejections; NaN p:
    not in the family, never rejected, level NaN). level is the alpha at which that test is decided: alpha / (m - j
    + 1) for the j-th smallest p while the procedure rejects, and the level of the step where it stopped for every
    test from there on. An interval at that level (bootstrap_interval) excludes 0 exactly when the test is
    rejected, so a verdict and the interval printed beside it cannot disagree."""
    p = np.asarray(p_values, dtype=float)
    ok = np.flatnonzero(np.isfinite(p))
    rejected, level = np.zeros(len(p), dtype=bool), np.full(len(p), np.nan)
    if not len(ok):
        return rejected, level
    m = len(ok)
    reject = _holm(p[ok], alpha)[0]
    order = ok[np.argsort(p[ok], kind="stable")]
    stop = next((j for j, i in enumerate(order) if not reject[np.searchsorted(ok, i)]), m)  # 0-based rank
    for j, i in enumerate(order):
        level[i] = alpha / (m - min(j, stop))
        rejected[i] = reject[np.searchsorted(ok, i)]
    return rejected, level


def _hsic_unbiased(x, y):
    """Song et al. (2012)'s unbiased HSIC estimator for the linear kernels K = x x^T and L = y y^T, computed in
    feature space (memory d1 x d2, not n x n: MNLI's 10k rows are fine). With K~, L~ the Gram matrices without
    their diagonals: [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))."""
    n = x.shape[0]
    k_diag, l_diag = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
    trace = np.sum((x.T @ y) ** 2) - k_diag @ l_diag
    k_rows, l_rows = x @ x.sum(0) - k_diag, y @ y.sum(0) - l_diag  # K~ 1 and L~ 1
    return (trace + k_rows.sum() * l_rows.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * k_rows @ l_rows) / (n * (n - 3))


def linear_cka(x, y) -> float:
    """Debiased linear CKA between two representations of the same n rows (n x d1, n x d2): 1 for the same
    representation up to rotation and isotropic scaling, near 0 for unrelated ones; debiased (Kornblith et al.
    2019 with the unbiased HSIC), so it does not drift upwards with few rows and many dimensions. Needs n >= 4."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape[0] != y.shape[0] or x.shape[0] < 4:
        raise ValueError(f"CKA needs the same rows, at least 4: {x.shape[0]} and {y.shape[0]}")
    x, y = x - x.mean(0), y - y.mean(0)
    xy, xx, yy = _hsic_unbiased(x, y), _hsic_unbiased(x, x), _hsic_unbiased(y, y)
    return float(xy / np.sqrt(xx * yy)) if xx > 0 and yy > 0 else math.nan

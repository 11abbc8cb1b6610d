"""Significance: the primary example-and-seed-level test (hierarchical bootstrap), across examples (exact McNemar,
Wilcoxon, paired bootstrap), across seeds only (Welch's t-test), and the Holm correction for a family of tests. Thin wrappers over scipy / statsmodels so the numbers are theirs. Must not know
about runs or files."""

import warnings

import numpy as np
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from .metrics import get_metric


def mean_std(values):
    """Mean and SAMPLE standard deviation (ddof=1; NaN for a single seed) and n."""
    values = np.asarray(values, dtype=float)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return float(np.mean(values)), std, len(values)


def welch_p(a, b):
    """Two-sided Welch t-test p-value of two models' per-seed scores (NaN when a side has < 2 seeds)."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    with warnings.catch_warnings():  # identical seeds (std 0) make scipy warn; the p it returns says it all
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(sps.ttest_ind(a, b, equal_var=False).pvalue)


def mcnemar_exact(only_a_right: int, only_b_right: int) -> float:
    """Exact McNemar p-value: a binomial test on the discordant pairs."""
    table = [[0, only_a_right], [only_b_right, 0]]
    return float(mcnemar(table, exact=True).pvalue)


def wilcoxon_p(errors_a, errors_b) -> float:
    """Two-sided Wilcoxon signed-rank p of paired errors (NaN when the two are identical everywhere)."""
    diff = np.asarray(errors_a, dtype=float) - np.asarray(errors_b, dtype=float)
    if not np.any(diff != 0):
        return float("nan")
    return float(sps.wilcoxon(errors_a, errors_b).pvalue)


def paired_bootstrap(metric_name, pred_a, pred_b, gold, n_resamples=2000, seed=0, confidence=0.95):
    """CI of metric(a) - metric(b), resampling examples (the same resample for both models), so it works for
    any GLUE metric (MCC, F1, Pearson). Returns (difference, low, high, two-sided bootstrap p for 'no
    difference')."""
    metric = get_metric(metric_name).fast
    pred_a, pred_b, gold = (np.asarray(x, dtype=float) for x in (pred_a, pred_b, gold))

    def diff(a, b, g, axis=-1):
        return metric(a, g) - metric(b, g)

    rng = np.random.default_rng(seed)
    res = sps.bootstrap((pred_a, pred_b, gold), diff, paired=True, vectorized=True, n_resamples=n_resamples,
                        method="percentile", confidence_level=confidence, rng=rng, batch=500)
    dist = np.asarray(res.bootstrap_distribution)
    dist = dist[np.isfinite(dist)]
    p = min(1.0, 2 * min(np.mean(dist <= 0), np.mean(dist >= 0))) if len(dist) else float("nan")
    return float(diff(pred_a, pred_b, gold)), float(res.confidence_interval.low), \
        float(res.confidence_interval.high), float(p)


def hierarchical_bootstrap(metric_name, seeds_a, seeds_b, gold, n_resamples=2000, seed=0, confidence=0.95,
                           batch=100):
    """The primary comparison of two models on one split: the difference of their seed-mean main metric, with a
    two-level bootstrap: each resample draws dev examples with replacement (the same for both models: paired) and,
    within each model, its seeds with replacement, so both the dev set being a sample and the seed-to-seed noise
    count. seeds_a, seeds_b: (seeds x examples) predictions; gold: (examples,). Returns (difference, CI low, CI
    high, two-sided p) with p = 2 min((1 + #{d <= 0}) / (R + 1), (1 + #{d >= 0}) / (R + 1)), never 0."""
    metric = get_metric(metric_name).fast
    a, b, gold = (np.asarray(x, dtype=float) for x in (seeds_a, seeds_b, gold))
    a, b = np.atleast_2d(a), np.atleast_2d(b)

    def seed_mean(preds, g):  # preds (..., seeds, n), g (..., n): the metric of each seed, averaged over seeds
        return np.mean(metric(preds, np.broadcast_to(g[..., None, :], preds.shape)), axis=-1)

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
    dist = np.concatenate(dist)
    dist = dist[np.isfinite(dist)]
    if not len(dist):
        return observed, float("nan"), float("nan"), float("nan")
    tail = (1 - confidence) / 2
    low, high = np.quantile(dist, [tail, 1 - tail])
    r = len(dist)
    p = min(1.0, 2 * min((1 + np.sum(dist <= 0)) / (r + 1), (1 + np.sum(dist >= 0)) / (r + 1)))
    return observed, float(low), float(high), float(p)


def holm(p_values):
    """Holm-adjusted p-values (family-wise error), NaNs passed through."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


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
    return float(xy / np.sqrt(xx * yy)) if xx > 0 and yy > 0 else float("nan")

"""Rules the mutation run found unstated (issue 32), with hand-computed answers: the statistics (bootstrap p and
interval, resamples, McNemar, Wilcoxon, Holm, HSIC and CKA)."""

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import accuracy_score

from frozen_glue.measures import stats


# --------------------------------------------------------------------------------------------------- stats


def test_bootstrap_p_counts_ties_on_both_sides_drops_non_finite_and_never_exceeds_one():
    """Davison & Hinkley's two-sided p: 2 min((1 + #{d <= 0}) / (R + 1), (1 + #{d >= 0}) / (R + 1)), capped at 1.
    By hand: d = 0, 0, 1..7 (R = 9): 2 * 3/10 = 0.6 (strict < would give 0.2); NaN beside 1, 2, 3: R = 3, 2 * 1/4
    = 0.5 (counting the NaN, R = 4: 0.4); d = 0 alone: 2 * 2/2 = 2, capped to 1; no finite resample: NaN."""
    from frozen_glue.measures import stats

    assert stats.bootstrap_p([0, 0, 1, 2, 3, 4, 5, 6, 7]) == pytest.approx(0.6)
    assert stats.bootstrap_p([-7, -6, -5, -4, -3, -2, -1, 0, 0]) == pytest.approx(0.6)
    assert stats.bootstrap_p([float("nan"), 1, 2, 3]) == pytest.approx(0.5)
    assert stats.bootstrap_p([float("inf"), -1, -2, -3]) == pytest.approx(0.5)
    assert stats.bootstrap_p([0.0]) == 1.0
    assert np.isnan(stats.bootstrap_p([float("nan")])) and np.isnan(stats.bootstrap_p([]))


def test_bootstrap_interval_takes_the_kth_resample_from_each_end():
    """k = floor(alpha (R + 1) / 2). R = 19 resamples 1..19 (given shuffled, with a NaN): alpha 0.1 gives k = 1,
    (1, 19), and so does 1 - 0.9, as hierarchical_bootstrap computes it (0.0999...98: 0.9999... before the
    floor's tolerance); alpha 0.2, k = 2, (2, 18); alpha 0.05, k = 0: no interval at that level, (-inf, inf); no finite resample: (NaN, NaN)."""
    from frozen_glue.measures import stats

    dist = list(np.random.default_rng(0).permutation(np.arange(1.0, 20.0))) + [float("nan")]
    assert stats.bootstrap_interval(dist, 0.1) == (1.0, 19.0)
    assert stats.bootstrap_interval(dist, 0.2) == (2.0, 18.0)
    assert stats.bootstrap_interval(dist, 1 - 0.9) == (1.0, 19.0)
    assert stats.bootstrap_interval(dist, 0.05) == (float("-inf"), float("inf"))
    assert all(np.isnan(stats.bootstrap_interval([float("nan")], 0.1)))


def test_resamples_for_leaves_ten_resamples_in_each_tail_at_holms_smallest_level():
    """R = max(n_resamples, ceil(20 m / alpha) - 1): m = 10 tests at alpha 0.05: 3999; m = 1: 399 (so 2000 stays);
    an empty family counts as one: 399 when fewer are asked for."""
    from frozen_glue.measures import stats

    assert stats.resamples_for(10) == 3999 and stats.resamples_for(1) == 2000
    assert stats.resamples_for(1, 100) == 399 and stats.resamples_for(0, 100) == 399
    assert stats.resamples_for(3, 100, alpha=0.01) == 5999


def test_mcnemar_exact_is_the_two_sided_binomial_on_the_discordant_pairs():
    """6 discordant pairs, all one way: 2 * 0.5^6 = 0.03125; 1 against 6: 2 * (1 + 7) / 2^7 = 0.125."""
    from frozen_glue.measures import stats

    assert stats.mcnemar_exact(0, 6) == pytest.approx(0.03125) == stats.mcnemar_exact(6, 0)
    assert stats.mcnemar_exact(1, 6) == pytest.approx(0.125)


def test_wilcoxon_is_nan_only_when_the_errors_are_identical_everywhere():
    from frozen_glue.measures import stats

    assert np.isnan(stats.wilcoxon_p([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]))
    a, b = [0.5, 0.4, 0.9, 0.2, 0.7, 0.6], [0.1, 0.2, 0.3, 0.1, 0.2, 0.1]
    assert stats.wilcoxon_p(a, b) == pytest.approx(sps.wilcoxon(a, b).pvalue) == pytest.approx(0.03125)


def test_the_hierarchical_bootstrap_is_its_definition_resample_by_resample():
    """An independent route: the same generator's draws, in the same order (per batch: examples, then A's seeds,
    then B's), scored one resample at a time with sklearn. 150 resamples in batches of 100 (two batches, the last
    short); the observed difference is the seed-mean accuracy of A minus B's: (3/6 + 5/6) / 2 - 1/6 = 0.5."""
    from frozen_glue.measures import stats

    gold = np.array([1, 1, 1, 1, 0, 0])
    a = np.array([[1, 1, 0, 0, 0, 1], [1, 1, 1, 0, 0, 0.0]])
    b = np.array([[1, 0, 0, 0, 1, 1.0]])
    observed, dist = stats.hierarchical_distribution("accuracy", a, b, gold, n_resamples=150, seed=3, batch=100)
    assert observed == pytest.approx((3 / 6 + 5 / 6) / 2 - 1 / 6)
    rng, want = np.random.default_rng(3), []
    for size in (100, 50):
        rows = rng.integers(0, 6, (size, 6))
        pick_a, pick_b = rng.integers(0, 2, (size, 2)), rng.integers(0, 1, (size, 1))
        for r in range(size):
            score = [[accuracy_score(gold[rows[r]], seeds[s][rows[r]]) for s in pick[r]]
                     for seeds, pick in ((a, pick_a), (b, pick_b))]
            want.append(np.mean(score[0]) - np.mean(score[1]))
    assert len(dist) == 150 and dist == pytest.approx(want)
    # the defaults the report relies on: seed 0, batches of 100
    assert stats.hierarchical_distribution("accuracy", a, b, gold, n_resamples=150)[1] == pytest.approx(
        stats.hierarchical_distribution("accuracy", a, b, gold, n_resamples=150, seed=0, batch=100)[1])
    assert len(stats.hierarchical_distribution("accuracy", a, b, gold)[1]) == 2000  # and 2000 resamples


def test_no_resample_is_an_empty_distribution_and_a_constant_resample_is_dropped_silently():
    """R = 0: the observed difference and nothing else (no p, no interval). Pearson on 5 rows whose gold has two
    values, one of them once: a resample that misses it has a constant gold (0/0: NaN, dropped, silently); about
    0.8^5 = 1/3 of them. MCC answers a one-class resample with 0, as sklearn does: nothing is dropped."""
    import warnings

    from frozen_glue.measures import stats

    gold = np.array([1.0, 1, 1, 1, 5])
    a, b = np.array([[1.0, 2, 1, 2, 4]]), np.array([[3.0, 1, 2, 1, 2]])
    observed, dist = stats.hierarchical_distribution("pearson", a, b, gold, n_resamples=0)
    assert observed == pytest.approx(sps.pearsonr(a[0], gold)[0] - sps.pearsonr(b[0], gold)[0])
    assert dist.shape == (0,) and np.isnan(stats.bootstrap_p(dist))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, dist = stats.hierarchical_distribution("pearson", a, b, gold, n_resamples=300)
        _, kept = stats.hierarchical_distribution("matthews_correlation", a > 1, b > 1, gold > 1, n_resamples=300)
    assert 150 < len(dist) < 250 and np.isfinite(dist).all() and len(kept) == 300


def test_one_seed_has_no_std_and_says_so_without_a_warning():
    import warnings

    from frozen_glue.measures import stats

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, std, n = stats.mean_std([0.7])
    assert (mean, n) == (0.7, 1) and np.isnan(std)


def test_wilcoxon_compares_the_two_models_errors_not_either_alone():
    """Paired errors whose differences change sign: a's errors alone (a one-sample test against 0) or b's alone
    give other p-values than the paired test of a - b."""
    from frozen_glue.measures import stats

    a, b = [0.9, 0.8, 0.1, 0.7, 0.6, 0.5, 0.4], [0.2, 0.3, 0.35, 0.1, 0.65, 0.05, 0.0]
    paired = sps.wilcoxon(np.subtract(a, b)).pvalue
    assert stats.wilcoxon_p(a, b) == pytest.approx(paired)
    assert paired != pytest.approx(sps.wilcoxon(a).pvalue) and paired != pytest.approx(sps.wilcoxon(b).pvalue)


def test_holm_levels_at_another_alpha_and_ties_in_the_order_given():
    """alpha = 0.1, p = (0.04, 0.06): 0.04 <= 0.1/2 and 0.06 <= 0.1/1: both rejected (at alpha 0.05 neither). Ties:
    53 p-values of three values, as numpy's default sort would reorder them: within a tie the levels follow the
    order given (stable), so a report names the same level for the same test every time. rejected is a boolean
    mask; a None p (a test not run) is outside the family, as NaN is."""
    from frozen_glue.measures import stats

    rejected, level = stats.holm_levels([0.04, 0.06], alpha=0.1)
    assert rejected.dtype == bool and list(rejected) == [True, True] and level == pytest.approx([0.05, 0.1])
    assert list(stats.holm_levels([0.04, 0.06])[0]) == [False, False]
    rng = np.random.default_rng(0)
    p = rng.choice([0.0001, 0.0002, 0.3], int(rng.integers(17, 60)))
    assert (np.argsort(p) != np.argsort(p, kind="stable")).any()  # the default sort does reorder these ties
    rejected, level = stats.holm_levels(p)
    for value in (0.0001, 0.0002):
        tie = np.flatnonzero(p == value)
        assert rejected[tie].all() and (np.diff(level[tie]) > 0).all()
    adjusted = stats.holm([0.01, None, 0.04])
    assert adjusted[0] == pytest.approx(0.02) and np.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    rejected, level = stats.holm_levels([0.01, None, 0.04])
    assert list(rejected) == [True, False, True] and np.isnan(level[1])


def _hsic_by_quadruples(k, l):
    """Song et al. (2012)'s unbiased HSIC as its U-statistic: the mean over ordered distinct quadruples (t, u, v,
    w) of h = 1/24 sum over their permutations of k_tu l_tu + k_tu l_vw - 2 k_tu l_tv (brute force)."""
    import itertools

    n, total, count = len(k), 0.0, 0
    for quad in itertools.permutations(range(n), 4):
        total += sum(k[t, u] * l[t, u] + k[t, u] * l[v, w] - 2 * k[t, u] * l[t, v]
                     for t, u, v, w in itertools.permutations(quad)) / 24
        count += 1
    return total / count


def test_the_unbiased_hsic_is_song_et_als_u_statistic():
    """The closed form on 6 rows equals the mean over all 360 ordered quadruples (CKA, a ratio of three HSICs,
    would not see its normalisation 1 / (n (n - 3)) go wrong)."""
    from frozen_glue.measures import stats

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    assert stats._hsic_unbiased(x, y) == pytest.approx(_hsic_by_quadruples(x @ x.T, y @ y.T), rel=1e-9)
    assert stats._hsic_unbiased(x, x) == pytest.approx(_hsic_by_quadruples(x @ x.T, x @ x.T), rel=1e-9)


def test_cka_in_float64_centred_with_large_offsets_small_scales_and_four_rows():
    """GPT-2's outlier dimensions sit hundreds of units from 0 and features are stored in half precision: CKA is
    computed in float64 on centred features (to 1e-9, the value without the offsets; float32 or uncentred sums
    lose it). Tiny features (HSIC below 1) still have a CKA; four rows are enough; a constant side is NaN without a
    warning; rows that differ are refused by name."""
    import warnings

    from frozen_glue.measures import stats

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 5))
    y[:, 0] += x[:, 0]
    want = stats.linear_cka(x, y)
    offsets = np.array([3e5, -2e5, 1e5, 5e4, -7e4, 9e4])
    assert stats.linear_cka(x + offsets, y - offsets[:5]) == pytest.approx(want, abs=1e-9)
    assert stats.linear_cka(x.astype(np.float32), y.astype(np.float32)) == pytest.approx(
        stats.linear_cka(x.astype(np.float32).astype(float), y.astype(np.float32).astype(float)), abs=1e-12)
    assert stats.linear_cka(x * 1e-3, y * 1e-3) == pytest.approx(want)
    assert np.isfinite(stats.linear_cka(x[:4], y[:4]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(stats.linear_cka(np.ones((10, 3)), y[:10])) and np.isnan(stats.linear_cka(y[:10], np.ones((10, 3))))
    with pytest.raises(ValueError, match="same rows, at least 4: 5 and 6"):
        stats.linear_cka(x[:5], y[:6])
    with pytest.raises(ValueError, match="same rows, at least 4: 3 and 3"):
        stats.linear_cka(x[:3], y[:3])


def test_interval_k_counts_r_plus_one_resamples():
    # R = 78 at alpha 0.05: k = floor(0.025 * 79) = 1 (the extremes); a rule that counted R + 2 would give k = 2
    dist = np.arange(78, dtype=float)
    assert stats.bootstrap_interval(dist, 0.05) == (0.0, 77.0)
    assert stats.bootstrap_interval(np.arange(79, dtype=float), 0.05) == (1.0, 77.0)  # R = 79: k = 2


def test_mean_std_of_seeds_and_a_seed_without_a_score():
    mean, std, n = stats.mean_std([1, 3])
    assert (mean, std, n) == (2.0, pytest.approx(2 ** 0.5), 2)  # the sample std (ddof 1), already at two seeds
    assert all(isinstance(v, float) for v in (mean, std))
    mean, std, n = stats.mean_std([0.5, None])  # a run whose metric is undefined (null): undefined, not a crash
    assert math.isnan(mean) and math.isnan(std) and n == 2


def test_welch_needs_two_seeds_a_side_and_no_more():
    assert stats.welch_p([0.1, 0.2], [0.5, 0.7]) == pytest.approx(sps.ttest_ind([0.1, 0.2], [0.5, 0.7],
                                                                                  equal_var=False).pvalue)
    assert math.isnan(stats.welch_p([0.1], [0.5, 0.7])) and math.isnan(stats.welch_p([0.1, 0.2], [0.5]))


def test_welch_on_identical_seeds_says_nan_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's RuntimeWarning for zero variance would raise here
        assert math.isnan(stats.welch_p([0.5, 0.5], [0.5, 0.5])) and stats.welch_p([0.5, 0.5], [0.7, 0.7]) == 0.0

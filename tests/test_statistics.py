"""The statistics with known answers: means, Welch, McNemar, the bootstrap, Holm, the GLUE metrics and their
registry, and debiased linear CKA (each against scipy / scikit-learn / a brute-force route, on inputs where the
wrong rule gives another answer)."""

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from frozen_glue.core.metrics import METRICS, display_name
from frozen_glue.measures import stats

from conftest import bootstrap_test

# ------------------------------------------------------------------------------------------- known answers


def test_mean_std_and_welch_equal_scipy():
    a, b = [0.51, 0.53, 0.55, 0.52, 0.54], [0.44, 0.47, 0.45, 0.48, 0.46]
    mean, std, n = stats.mean_std(a)
    assert (mean, n) == (pytest.approx(0.53), 5)
    assert std == pytest.approx(np.std(a, ddof=1)) and std == pytest.approx(0.0158113883)
    assert stats.welch_p(a, b) == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue)
    assert np.isnan(stats.welch_p([0.5], b)) and np.isnan(stats.mean_std([0.5])[1])


def test_mcnemar_exact_on_fixed_table():
    # 2 x binom(n=12, p=0.5) tail at 2: (1 + 12 + 66) / 4096 * 2
    assert stats.mcnemar_exact(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert stats.mcnemar_exact(5, 5) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["accuracy", "f1", "matthews_correlation", "pearson", "spearmanr"])
def test_fast_metrics_equal_sklearn_scipy(name):
    rng = np.random.default_rng(1)
    for _ in range(5):
        if name in ("pearson", "spearmanr"):
            g, p = rng.uniform(0, 5, 50), rng.uniform(0, 5, 50)
            want = (sps.pearsonr if name == "pearson" else sps.spearmanr)(p, g)[0]
        else:
            g, p = rng.integers(0, 3 if name != "f1" else 2, 50), rng.integers(0, 3 if name != "f1" else 2, 50)
            want = {"accuracy": accuracy_score, "f1": f1_score, "matthews_correlation": matthews_corrcoef}[name](g, p)
        assert METRICS[name].fast(p.astype(float), g.astype(float)) == pytest.approx(want)


def test_bootstrap_ci_contains_truth_and_excludes_zero_when_large():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 2000)
    a = np.where(rng.random(2000) < 0.9, gold, 1 - gold)
    b = np.where(rng.random(2000) < 0.6, gold, 1 - gold)
    diff, low, high, p = bootstrap_test("accuracy", a[None], b[None], gold)
    assert low < 0.3 < high and low > 0 and p < 0.01  # true accuracy difference 0.9 - 0.6
    same = np.where(rng.random(2000) < 0.9, gold, 1 - gold)
    _, low, high, p = bootstrap_test("accuracy", a[None], same[None], gold)
    assert low < 0 < high and p > 0.05


def test_holm_matches_statsmodels_order():
    assert list(stats.holm([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])


# known answers computed by hand: a wrong statistic (sklearn against itself, Student for Welch, an unpaired
# bootstrap, Bonferroni for Holm) fails them

def test_glue_metrics_known_answers():
    from frozen_glue.core.tasks import TASKS, compute_metrics

    # TP 3 (0, 3, 5), TN 1 (1), FP 1 (2), FN 1 (4)
    pred, gold = [1, 0, 1, 1, 0, 1], [1, 0, 0, 1, 1, 1]
    mrpc = compute_metrics(TASKS["mrpc"], pred, gold)
    assert mrpc["accuracy"] == pytest.approx(4 / 6) and mrpc["f1"] == pytest.approx(6 / 8)  # 2TP / (2TP + FP + FN)
    assert mrpc["combined_score"] == pytest.approx((4 / 6 + 6 / 8) / 2)
    # (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (3 - 1) / sqrt(4 * 4 * 2 * 2)
    assert compute_metrics(TASKS["cola"], pred, gold)["matthews_correlation"] == pytest.approx(0.25)
    assert compute_metrics(TASKS["mnli"], [0, 1, 2, 2], [0, 1, 1, 2])["accuracy"] == pytest.approx(0.75)
    # pearson: centred p [-1.5 -.5 .5 1.5], g [-1.75 .25 1.25 .25]: 3.5 / sqrt(5 * 4.75)
    # spearman: ranks of g [1 2.5 4 2.5]: 3 / sqrt(5 * 4.5)
    stsb = compute_metrics(TASKS["stsb"], [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 5.0, 4.0])
    assert stsb["pearson"] == pytest.approx(3.5 / np.sqrt(5 * 4.75)) and stsb["pearson"] == pytest.approx(0.718185)
    assert stsb["spearmanr"] == pytest.approx(3 / np.sqrt(5 * 4.5)) and stsb["spearmanr"] == pytest.approx(0.632456)
    for name, value in (("accuracy", 4 / 6), ("f1", 0.75), ("matthews_correlation", 0.25)):
        assert METRICS[name].fast(np.array(pred, float), np.array(gold, float)) == pytest.approx(value)
    assert METRICS["pearson"].fast(np.array([1.0, 2, 3, 4]), np.array([2.0, 4, 5, 4])) == pytest.approx(0.718185)
    assert METRICS["spearmanr"].fast(np.array([1.0, 2, 3, 4]), np.array([2.0, 4, 5, 4])) == pytest.approx(
        0.632456)


def test_welch_known_answer_that_student_gets_wrong():
    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 20.0, 30.0]  # variances 2.5 and 100
    se2 = 2.5 / 5 + 100 / 3
    t = (3.0 - 20.0) / np.sqrt(se2)
    df = se2 ** 2 / ((2.5 / 5) ** 2 / 4 + (100 / 3) ** 2 / 2)  # Welch-Satterthwaite
    welch = 2 * sps.t.sf(abs(t), df)
    pooled = (4 * 2.5 + 2 * 100) / 6
    student = 2 * sps.t.sf(abs((3.0 - 20.0) / np.sqrt(pooled * (1 / 5 + 1 / 3))), 6)
    assert df == pytest.approx(2.0602, abs=1e-4) and welch == pytest.approx(0.09644, abs=1e-5)
    assert stats.welch_p(a, b) == pytest.approx(welch, rel=1e-9)
    assert student == pytest.approx(0.00767, abs=1e-5)  # Student's p would pass as significant at 0.05


def test_the_bootstrap_is_paired_over_examples():
    """B equals A except on 8 of 200 examples: the paired CI of the difference is narrow and excludes 0, where
    resampling the two models independently (unpaired) gives a CI that includes 0."""
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 2, 200)
    a = np.where(np.arange(200) < 120, gold, 1 - gold)   # accuracy 0.60
    b = a.copy()
    b[:8] = 1 - b[:8]                                      # 8 of A's right answers wrong: 0.56
    diff, low, high, p = bootstrap_test("accuracy", a[None], b[None], gold, n_resamples=2000)
    assert diff == pytest.approx(0.04) and 0 < low < high < 0.08 and p < 0.05
    right_a, right_b = a == gold, b == gold
    unpaired = [right_a[rng.integers(0, 200, 200)].mean() - right_b[rng.integers(0, 200, 200)].mean()
                for _ in range(2000)]
    assert np.percentile(unpaired, 2.5) < 0 < np.percentile(unpaired, 97.5)


def test_holm_differs_from_raw_and_from_bonferroni():
    p = [0.01, 0.02, 0.045]
    holm = stats.holm(p)
    assert list(holm) == pytest.approx([0.03, 0.04, 0.045])      # step-down: 3p, 2p, 1p, kept monotone
    assert list(np.minimum(np.array(p) * 3, 1)) != pytest.approx(list(holm))  # Bonferroni: 0.03, 0.06, 0.135
    raw_significant, holm_significant = [x < 0.05 for x in [0.01, 0.03, 0.04]], stats.holm([0.01, 0.03, 0.04]) < 0.05
    assert raw_significant == [True, True, True] and list(holm_significant) == [True, False, False]


def test_metric_registry_names_directions_and_mismatched_keys():
    from frozen_glue.core.metrics import get_metric
    from frozen_glue.core.tasks import TASKS

    assert {m for t in TASKS.values() for m in t.metrics} | {t.main_metric for t in TASKS.values()} <= set(METRICS)
    assert display_name("accuracy_mm") == "accuracy (mismatched)" and display_name("spearmanr") == "Spearman ρ"
    assert get_metric("accuracy_mm") is METRICS["accuracy"]
    assert METRICS["matthews_correlation"].better(0.3, 0.2) and not METRICS["matthews_correlation"].better(0.2, 0.2)
    assert METRICS["loss"].better(0.2, 0.3)  # lower is better


def _hsic_by_quadruples(k, l):
    """The unbiased HSIC as its U-statistic (Song et al. 2012): the mean over ordered distinct quadruples of
    h = 1/24 sum over their permutations (t, u, v, w) of k_tu l_tu + k_tu l_vw - 2 k_tu l_tv. Brute force, an
    independent route to the closed form the package uses."""
    import itertools

    n, total, count = len(k), 0.0, 0
    for quad in itertools.permutations(range(n), 4):
        h = sum(k[t, u] * l[t, u] + k[t, u] * l[v, w] - 2 * k[t, u] * l[t, v]
                for t, u, v, w in itertools.permutations(quad)) / 24
        total, count = total + h, count + 1
    return total / count


def test_linear_cka_known_answers():
    from frozen_glue.measures.stats import linear_cka

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    xc, yc = x - x.mean(0), y - y.mean(0)
    k, l = xc @ xc.T, yc @ yc.T
    want = _hsic_by_quadruples(k, l) / np.sqrt(_hsic_by_quadruples(k, k) * _hsic_by_quadruples(l, l))
    assert linear_cka(x, y) == pytest.approx(want, rel=1e-9)
    x = rng.normal(size=(200, 16))
    assert linear_cka(x, x) == pytest.approx(1.0)
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert linear_cka(x, 3.5 * x @ rotation + 2.0) == pytest.approx(1.0)  # rotation, isotropic scale, shift
    assert linear_cka(x, x * np.arange(1, 17)) < 0.99  # anisotropic scaling is a different representation
    # debiased: unrelated representations read near 0 even with few rows and many dimensions (biased CKA: ~0.5)
    assert abs(linear_cka(rng.normal(size=(50, 200)), rng.normal(size=(50, 200)))) < 0.05


def test_holm_carries_the_maximum_down_and_freezes_the_process_for_statsmodels_collection(monkeypatch):
    """p = (0.01, 0.04, 0.03): Holm multiplies the sorted p by 3, 2, 1 and carries the maximum down: 0.03, 0.06,
    0.06 (Bonferroni would give 0.03, 0.12, 0.09; without the maximum carried, 0.03, 0.06, 0.04). statsmodels'
    gc.collect() runs with the objects alive before the call frozen, and nothing stays frozen after."""
    import gc

    frozen = []
    collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: frozen.append(gc.get_freeze_count()) or collect(*a))
    assert stats.holm([0.01, 0.04, float("nan"), 0.03]) == pytest.approx([0.03, 0.06, np.nan, 0.06], nan_ok=True)
    assert frozen and frozen[0] > 1000 and gc.get_freeze_count() == 0
    rejected, level = stats.holm_levels([0.01, 0.04, 0.03])
    assert list(rejected) == [True, False, False] and level == pytest.approx([0.05 / 3, 0.05 / 2, 0.05 / 2])

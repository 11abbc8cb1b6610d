"""Rules the mutation run found unstated (issue 32): one test per surviving mutant, each a known answer computed by
hand on inputs where the mutated rule gives another number."""

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from frozen_glue.core.metrics import METRICS, display_name, get_metric

# ------------------------------------------------------------------------------------------------- metrics

LIBRARY = {"accuracy": lambda p, g: accuracy_score(g, p), "f1": lambda p, g: f1_score(g, p, zero_division=0.0),
           "matthews_correlation": lambda p, g: matthews_corrcoef(g, p),
           "pearson": lambda p, g: sps.pearsonr(p, g)[0], "spearmanr": lambda p, g: sps.spearmanr(p, g)[0]}


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_fast_metrics_score_each_row_of_a_resample_matrix_on_its_own(name):
    """The bootstrap calls the fast forms on a (resamples x examples) matrix, 4 x 30 here: each row is scored on
    its own, as the library scores it. A form that reduces over every axis gives one number, over the first axis 30
    of them, and a mean taken without keepdims does not broadcast against 4 rows."""
    rng = np.random.default_rng(7)
    if name in ("pearson", "spearmanr"):
        gold, pred = rng.uniform(0, 5, (4, 30)).round(1), rng.uniform(0, 5, (4, 30)).round(1)  # ties: ranks averaged
    else:
        classes = 2 if name == "f1" else 3
        gold = rng.integers(0, classes, (4, 30)).astype(float)
        pred = np.where(rng.random((4, 30)) < 0.3 * np.arange(1, 5)[:, None], gold, rng.integers(0, classes, (4, 30)))
    got = METRICS[name].fast(pred.astype(float), gold)
    assert got.shape == (4,)
    assert got == pytest.approx([LIBRARY[name](p, g) for p, g in zip(pred, gold)])
    assert len(set(np.round(got, 6))) == 4  # four different rows, four different scores


def test_fast_mcc_counts_a_class_only_gold_has_and_a_constant_prediction_scores_zero():
    """Gold has class 2, the predictions never do. By hand (Gorodkin's K-class MCC): n = 6, correct = 4,
    predicted counts (3, 3, 0), gold counts (2, 2, 2): (4 * 6 - 12) / sqrt((36 - 18) * (36 - 12)) = 12 / sqrt(432)
    = 0.577. Classes taken from the predictions alone drop gold's 2 from sum t_k^2: 12 / sqrt(18 * 28) = 0.535.
    A constant prediction has no covariance: 0, as sklearn says (0/0 otherwise)."""
    pred, gold = np.array([0, 0, 0, 1, 1, 1.0]), np.array([0, 0, 2, 1, 1, 2.0])
    fast = METRICS["matthews_correlation"].fast
    assert fast(pred, gold) == pytest.approx(12 / np.sqrt(432)) == matthews_corrcoef(gold, pred)
    assert fast(np.zeros(6), gold) == 0.0 == matthews_corrcoef(gold, np.zeros(6))
    assert fast(np.stack([pred, np.zeros(6)]), np.stack([gold, gold])).tolist() == pytest.approx(
        [12 / np.sqrt(432), 0.0])


def test_fast_f1_counts_class_1_as_positive():
    """pred (1, 1, 0, 0), gold (1, 0, 1, 0): tp = 1, fp = 1, fn = 1: F1 = 2 / (2 + 2) = 0.5. With class 0 as the
    positive class the same counts give 0.5 too, so a second case: pred (1, 1, 1, 0), gold (1, 1, 0, 0): tp = 2,
    errors 1: 4/5 = 0.8 (class 0 positive: tp = 1, errors 1: 2/3)."""
    f1 = METRICS["f1"].fast
    assert f1(np.array([1, 1, 0, 0.0]), np.array([1, 0, 1, 0.0])) == pytest.approx(0.5)
    assert f1(np.array([1, 1, 1, 0.0]), np.array([1, 1, 0, 0.0])) == pytest.approx(0.8)


def test_a_constant_regression_prediction_has_no_correlation():
    """Pearson of a constant against anything is 0/0: NaN, as scipy says (not 0, not an error)."""
    gold = np.array([1.0, 2.0, 4.0])
    with pytest.warns(sps.ConstantInputWarning):
        assert np.isnan(sps.pearsonr(np.full(3, 2.0), gold)[0])
    assert np.isnan(METRICS["pearson"].fast(np.full(3, 2.0), gold))


def test_lower_is_better_is_strict_and_names_fall_back_to_the_key():
    assert METRICS["loss"].better(0.2, 0.3) and not METRICS["loss"].better(0.2, 0.2)
    assert not METRICS["loss"].better(0.3, 0.2) and not METRICS["accuracy"].better(0.2, 0.3)
    assert display_name("majority_accuracy") == "majority_accuracy"
    assert display_name("majority_accuracy_mm") == "majority_accuracy (mismatched)"
    assert display_name("matthews_correlation") == "Matthews correlation"
    assert display_name("matthews_correlation_mm") == "Matthews correlation (mismatched)"
    assert get_metric("pearson") is METRICS["pearson"]
    with pytest.raises(KeyError):
        get_metric("majority_accuracy")


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_each_metrics_reported_score_is_the_librarys(name):
    """The number a run reports is the library's (score), called with gold and predictions in the library's order:
    F1 and the correlations are symmetric, so the order is checked where it matters, through sklearn's own
    convention on an asymmetric case for F1 (precision and recall swap, F1 does not: it stays)."""
    pred, gold = np.array([1, 1, 1, 0, 0, 1.0]), np.array([1, 0, 1, 0, 1, 1.0])
    assert METRICS[name].score(pred, gold) == pytest.approx(LIBRARY[name](pred, gold))


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


@pytest.mark.parametrize("name, pred, gold", [
    ("f1", [0, 0, 0], [0, 0, 0]), ("matthews_correlation", [1, 1, 1], [0, 1, 1]),
    ("matthews_correlation", [0, 1, 1], [1, 1, 1]), ("pearson", [2, 2, 2], [1, 2, 4]),
    ("spearmanr", [1, 2, 4], [3, 3, 3])])
def test_the_fast_forms_answer_0_over_0_without_a_warning(name, pred, gold):
    """The bootstrap meets 0/0 in every resample that draws one class only: the fast forms answer as the library
    does (F1 and MCC 0, the correlations NaN) and raise no RuntimeWarning thousands of times."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = METRICS[name].fast(np.array(pred, float), np.array(gold, float))
    assert (np.isnan(got) if name in ("pearson", "spearmanr") else got == 0.0)


def test_fast_f1_of_one_true_positive_is_not_the_fallback():
    """tp = 1 with one error: 2 / 3 (a guard that needs tp > 1 answers 0)."""
    assert METRICS["f1"].fast(np.array([1, 0, 1.0]), np.array([1, 0, 0.0])) == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------------- identity


def test_protocol_diff_names_every_argument_that_differs_including_ones_only_one_side_has():
    from frozen_glue.core.identity import protocol_diff

    assert protocol_diff(None, {"learning_rate": 0.01}) == "made without a recorded protocol (an older frozen-GLUE)"
    old = {"learning_rate": 0.02, "num_train_epochs": 2.0, "pooling": "auto"}
    new = {"learning_rate": 0.05, "num_train_epochs": 2.0, "pooling": "auto", "probe_mdl": True}
    assert protocol_diff(old, new) == "learning_rate 0.02 -> 0.05, probe_mdl None -> True"
    assert protocol_diff(new, old) == "learning_rate 0.05 -> 0.02, probe_mdl True -> None"
    assert protocol_diff(old, dict(old)) == "no argument differs"


def test_difference_names_the_protocol_the_weights_and_the_data_splits_that_differ():
    """Two configs whose protocol, weights and two data splits differ (one split only the new run has): the words
    name each, in that order, and the splits by name."""
    from frozen_glue.core.identity import difference

    old = {"protocol_hash": "p1", "protocol": {"learning_rate": 0.02}, "model_fingerprint": "m1",
           "tokenizer_fingerprint": "t", "data_fingerprints": {"train": "a", "validation": "b"}}
    new = {"protocol_hash": "p2", "protocol": {"learning_rate": 0.05}, "model_fingerprint": "m2",
           "tokenizer_fingerprint": "t", "data_fingerprints": {"train": "a", "validation": "c", "test": "d"}}
    assert difference(old, new) == ("learning_rate 0.02 -> 0.05, the model's weights differ, "
                                    "the data (test, validation) differ")
    assert difference(old, dict(old)) == ""
    assert difference({**old, "data_fingerprints": None}, old) == "the data differ"  # an older run: no splits


# --------------------------------------------------------------------------------------------------- layout


def test_run_dir_is_runs_alias_task_seed():
    from pathlib import Path

    from frozen_glue.core import layout

    assert layout.run_dir("runs", "comet", "cola", 3) == Path("runs") / "comet" / "cola" / "seed3"


# ------------------------------------------------------------------------------------------------- compare


def test_the_slice_tagger_is_spacys_small_english_model_without_parser_ner_or_lemmatizer(monkeypatch):
    """With spaCy installed, the slices tag with en_core_web_sm and only its tagger (parser, NER and lemmatizer
    off: they cost time and decide nothing here); without spaCy or the model, None (the rule-based tagger)."""
    import sys
    import types

    from frozen_glue.report import compare

    calls = []
    monkeypatch.setitem(sys.modules, "spacy", types.SimpleNamespace(load=lambda *a, **k: calls.append((a, k)) or "nlp"))
    assert compare._spacy_tagger() == "nlp"
    assert calls == [(("en_core_web_sm",), {"disable": ["parser", "ner", "lemmatizer"]})]

    def missing(*a, **k):
        raise OSError("[E050] Can't find model 'en_core_web_sm'")

    monkeypatch.setitem(sys.modules, "spacy", types.SimpleNamespace(load=missing))
    assert compare._spacy_tagger() is None


# ---------------------------------------------------------------------------------------------- information


def test_expected_layer_sorts_layers_numerically_and_reads_lower_is_better_curves():
    """Tenney's E[l] over the running best. Layers given as strings out of order, "10" before "2" (a sort of the
    strings would put 10 first): scores 0.5, 0.6, 0.9 at layers 0, 2, 10 give gains 0.1 at 2 and 0.3 at 10:
    (2 * 0.1 + 10 * 0.3) / 0.4 = 8. A loss curve (lower is better) 0.9, 0.8, 0.5 is the same curve negated: 8 too
    (read as higher-is-better it has no gain: None)."""
    from frozen_glue.measures.information import expected_layer

    assert expected_layer(["10", "0", "2"], [0.9, 0.5, 0.6]) == pytest.approx(8.0)
    assert expected_layer([10, 0, 2], [0.5, 0.9, 0.8], higher_is_better=False) == pytest.approx(8.0)
    assert expected_layer([10, 0, 2], [0.5, 0.9, 0.8]) is None


def test_expected_layer_skips_a_layer_without_a_score_and_reads_no_layer_as_no_gain():
    """layer_results.json writes a NaN score as null: read back, None. Layers 0, 1, 2 scoring 0.5, None, 0.7: the
    gain 0.2 lands on layer 2 (E = 2). No layer at all: no gain, None."""
    from frozen_glue.measures.information import expected_layer

    assert expected_layer([0, 1, 2], [0.5, None, 0.7]) == pytest.approx(2.0)
    assert expected_layer([], []) is None


def test_separation_layer_by_welchs_test_with_the_top_layers_sign_down_to_the_lowest():
    """Three layers, 5 seeds each side, means 0.10 apart with std 0.01 (Welch p ~ 1e-7) everywhere: separated from
    layer 0. Flip layer 1's sign: the gap at layer 1 is not the top's, so separation starts at layer 2 (the
    layer below the top decides nothing by its own sign). Welch, not Student: at layer 0, 2 seeds with std 0.08
    beside 10 with std 0.001 (Student's pooled p 0.006, Welch's 0.35): not separated there. A missing std (one
    seed: null in JSON) never separates, and nothing warns."""
    import warnings

    from scipy.stats import ttest_ind_from_stats

    from frozen_glue.measures.information import separation_layer

    n5 = [5, 5, 5]
    assert separation_layer([0, 1, 2], [0.6, 0.6, 0.6], [0.01] * 3, n5, [0.5] * 3, [0.01] * 3, n5) == 0
    assert separation_layer([0, 1, 2], [0.6, 0.4, 0.6], [0.01] * 3, n5, [0.5] * 3, [0.01] * 3, n5) == 2
    assert separation_layer([2, 0, 1], [0.6, 0.6, 0.4], [0.01] * 3, n5, [0.5] * 3, [0.01] * 3, n5) == 2  # unsorted
    student = ttest_ind_from_stats(0.6, 0.08, 2, 0.5, 0.001, 10, equal_var=True).pvalue
    welch = ttest_ind_from_stats(0.6, 0.08, 2, 0.5, 0.001, 10, equal_var=False).pvalue
    assert student < 0.05 < welch
    assert separation_layer([0, 1], [0.6, 0.6], [0.08, 0.01], [2, 5], [0.5, 0.5], [0.001, 0.01], [10, 5]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert separation_layer([0, 1, 2], [0.6, 0.6, 0.6], [None, 0.1, 0.01], [1, 1, 5], [0.5, 0.5, 0.5],
                                [0.0, 0.0, 0.01], [5, 1, 5]) == 2


def test_relation_of_two_runs_names_controls_settings_poolings_and_identical_weights():
    from frozen_glue.core.errors import UserError
    from frozen_glue.core.identity import IDENTICAL, relation, relation_of

    base = {"learning_rate": 0.01, "pooling": "auto"}
    assert relation(base, dict(base)) == ""
    assert relation(base, {**base, "random_init": True}) == "control"
    assert relation({**base, "random_init": False}, {**base, "random_init": True, "seed_offset": 1}) == \
        "settings differ: random_init False -> True, seed_offset None -> 1"
    assert relation(None, base) == "settings differ: made without a recorded protocol (an older frozen-GLUE)"
    with pytest.raises(UserError) as e:
        relation(base, {**base, "pooling": "mean"})
    assert str(e.value) == ("one model was probed with --pooling auto, the other with --pooling mean; compare runs "
                            "of the same pooling")
    with pytest.raises(UserError) as e:
        relation({"learning_rate": 0.01}, {"learning_rate": 0.01, "pooling": "mean"})
    assert "--pooling auto, the other with --pooling mean" in str(e.value)
    with pytest.raises(UserError) as e:
        relation(base, base, ("mean", "pooler"))
    assert str(e.value) == ("one model's heads read mean, the other's pooler (config.json: pooling.rule): pass both "
                            "the same --pooling (e.g. --pooling mean) and rerun")
    assert relation(base, base, ("mean", None)) == "" and relation(base, base, ("mean", "mean")) == ""

    def config(model="m1", tokenizer="t1", rule="last_non_pad", **protocol):
        return {"protocol": {**base, **protocol}, "model_fingerprint": model, "tokenizer_fingerprint": tokenizer,
                "pooling": {"rule": rule}}

    assert relation_of(config(), config()) == IDENTICAL
    assert relation_of(config(), config(learning_rate=0.02)) == f"{IDENTICAL}; settings differ: learning_rate 0.01 -> 0.02"
    assert relation_of(config(), config(model="m2")) == "" and relation_of(config(), config(tokenizer="t2")) == ""
    assert relation_of(config(model=None), config(model=None)) == ""  # no fingerprint recorded: not known identical
    assert relation_of(config(model="m2"), config(random_init=True)) == "control"
    with pytest.raises(UserError, match="heads read last_non_pad, the other's mean"):
        relation_of(config(), config(model="m2", rule="mean"))
    assert relation_of(None, None) == ""

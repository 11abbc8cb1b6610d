"""Rules the mutation run found unstated (issue 32), one test per surviving mutant, each a known answer computed by
hand on inputs where the mutated rule gives another number: the GLUE metrics and their vectorized forms.
(Statistics: test_mutant_rules_stats.py; identity, layout, slices and layer measures: test_mutant_rules_runs.py.)"""

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

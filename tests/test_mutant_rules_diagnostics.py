"""Rules of the dead-head diagnostics, stated with answers written out here (mutation testing, docs/mutants.md):
the association test, what counts as collapsed, the majority-class control and the advice a collapsed head gets."""

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from frozen_glue.core.tasks import get_task
from frozen_glue.measures import diagnostics

COLA, MNLI, STSB = get_task("cola"), get_task("mnli"), get_task("stsb")


def test_binary_association_is_mcc_with_p_from_n_mcc_squared():
    gold = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    pred = np.array([1, 1, 1, 0, 0, 0, 0, 1])  # tp 3, fn 1, tn 3, fp 1: MCC = (9 - 1) / 16 = 0.5
    mcc, p = diagnostics.association_p(COLA, pred, gold)
    assert mcc == pytest.approx(0.5)
    assert p == pytest.approx(sps.norm.sf(0.5 * math.sqrt(8)))  # 0.0786: one-sided, n = 8
    assert p == pytest.approx(0.07865, abs=1e-5)
    # the label order: the same p whichever is called gold (MCC is symmetric), a worse head a larger p
    assert diagnostics.association_p(COLA, gold, pred)[1] == pytest.approx(p)
    assert diagnostics.association_p(COLA, 1 - pred, gold) == (pytest.approx(-0.5), pytest.approx(1 - p))


def test_several_classes_use_the_chi_square_test_of_the_confusion_table_without_empty_rows():
    gold = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 1, 2])
    pred = np.array([0, 0, 1, 1, 1, 0, 2, 2, 1, 0, 1, 2])
    mcc, p = diagnostics.association_p(MNLI, pred, gold)
    table = np.array([[3, 1, 0], [1, 3, 0], [0, 1, 3]])  # gold x prediction, counted by hand
    assert p == pytest.approx(sps.chi2_contingency(table, correction=False).pvalue) and mcc > 0
    # a class nobody predicts and no gold row has: its empty row and column are dropped, not a zero expected count
    only_two = diagnostics.association_p(MNLI, np.array([0, 0, 1, 1, 0, 1]), np.array([0, 0, 1, 1, 1, 0]))
    assert only_two[1] == pytest.approx(sps.chi2_contingency([[2, 1], [1, 2]], correction=False).pvalue)
    assert diagnostics.association_p(MNLI, np.array([1, 2, 0]), np.array([0, 1, 2]))[1] == 1.0  # MCC <= 0


def test_sts_b_association_is_the_one_sided_pearson_test():
    gold, scores = np.array([0.0, 1.0, 2.0, 3.0, 4.0]), np.array([0.5, 0.4, 2.5, 2.0, 4.5])
    r, p = diagnostics.association_p(STSB, scores, gold)
    assert (r, p) == (pytest.approx(sps.pearsonr(scores, gold)[0]),
                      pytest.approx(sps.pearsonr(scores, gold, alternative="greater")[1]))
    assert p < sps.pearsonr(scores, gold)[1]  # one-sided: half the two-sided p


def test_what_collapsed_means_and_how_it_is_said():
    gold = np.array([1, 1, 1, 1, 0, 0, 0, 0] * 2)
    one_class = np.tile([0.0, 1.0], (16, 1))
    assert diagnostics.collapse_reason(COLA, one_class, gold) == (
        "every validation prediction is class 1 (acceptable)")
    noise = np.eye(2)[[1, 0, 1, 0, 1, 0, 1, 0] * 2]  # MCC 0: no association
    assert diagnostics.collapse_reason(COLA, noise, gold) == (
        "validation predictions are not significantly associated with the gold labels (MCC 0.000, one-sided p 0.5):"
        " no better than the majority-class control")
    assert diagnostics.collapse_reason(COLA, np.eye(2)[gold], gold) is None
    gold4 = np.array([0.0, 4.0])  # std 2
    assert diagnostics.collapse_reason(STSB, np.array([0.0, 0.2]), gold4) == (  # std 0.1 = FLAT x 2: constant (<=)
        "the validation scores are constant (spread 0.1, under 5% of the gold's 2)")
    assert diagnostics.collapse_reason(STSB, np.array([0.0, 0.3, 4.0]), np.array([0.0, 0.2, 4.0])) is None
    spread = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    assert diagnostics.collapse_reason(STSB, spread[::-1].copy(), spread) == (
        "validation Pearson r -1.000 is not significantly above 0 (one-sided p 1)")


def test_the_majority_class_control():
    # classes 0 and 1 tie in train: the lowest id; scored on the dev labels like a model
    out = diagnostics.majority_baseline(get_task("sst2"), [1, 0, 1, 0, 2 - 2], [0, 0, 1, 1])
    assert out == {"eval_majority_accuracy": 0.5}
    tie = diagnostics.majority_baseline(get_task("sst2"), [1, 0, 0, 1], [0, 0, 0, 1], suffix="_x")
    assert tie == {"eval_majority_accuracy_x": 0.75}
    mrpc = diagnostics.majority_baseline(get_task("mrpc"), [1, 1, 0], [1, 0, 1, 1])  # constant 1: F1 6/7
    assert mrpc == {"eval_majority_accuracy": 0.75, "eval_majority_f1": pytest.approx(6 / 7),
                    "eval_majority_combined_score": pytest.approx((0.75 + 6 / 7) / 2)}
    stsb = diagnostics.majority_baseline(STSB, [1.0, 2.0, 4.5], [0.0, 5.0])  # Pearson of a constant: undefined
    assert stsb == {"eval_majority_pearson": None, "eval_majority_spearmanr": None,
                    "eval_majority_combined_score": None}


def test_the_advice_names_each_cause_with_its_flag_and_never_a_flag_already_used():
    config = {"path": "trainer", "pooling": {"rule": "pooler"},
              "args": {"study": {}, "training": {"learning_rate": 0.002, "num_train_epochs": 3}, "data": {
                  "max_train_samples": 64}}}
    convex = {"layers": {"2": {"gap": 0.01, "convex": 0.11, "head": 0.1}, "10": {"gap": 0.5, "convex": 0.9,
                                                                               "head": 0.4}}}
    assert diagnostics.collapse_advice(config, {"train_samples": 64}) == (
        "the head reads the pooler output, which a sentence encoder was never trained to produce: --pooling mean "
        "(with --feature_cache DIR); raw feature scale (features that vary little around a large mean keep an AdamW "
        "head at the prior): --standardize_features with --feature_cache DIR; one learning rate (0.002) was tried: "
        "a grid chosen on a train hold-out, --head_learning_rates 1e-4 1e-3 1e-2 1e-1 (with --feature_cache DIR); "
        "3 epoch(s): --num_train_epochs 10; only 64 train rows (--max_train_samples 64): raise it")
    convex["layers"]["10"]["gap"] = 0.0  # the top layer (10, not "2" by string order): no better than the head
    cached = {"path": "cached", "pooling": {"rule": "last"}, "args": {"study": {
        "standardize_features": True, "head_learning_rates": [1e-3, 1e-2, 1e-1]}, "training": {
        "num_train_epochs": 3, "max_steps": 100}}}
    assert diagnostics.collapse_advice(cached, {"train_samples": 999}, {"chosen": {"learning_rate": 1e-3}}, convex) == (
        "a convex probe on the same features scores 0.900 against the head's 0.400 (convex.json, layer 10): the "
        "features hold little of this task at these rows, not the head; more train rows or another layer "
        "(--probe_layers all); the chosen learning rate 0.001 is the edge of the grid: extend --head_learning_rates "
        "below it; only 999 train rows")
    done = {"path": "cached", "args": {"study": {"standardize_features": True, "pooling": "mean",
                                                 "head_learning_rates": [1e-3, 1e-2, 1e-1]},
                                       "training": {"num_train_epochs": 10}}}
    assert diagnostics.collapse_advice(done, {"train_samples": 1000}, {"chosen": {"learning_rate": 1e-2}}) == (
        "no cause this tool can name from the run's settings")
    assert diagnostics.collapse_advice(done, {}, {"chosen": {"learning_rate": 1e-1}}) == (
        "the chosen learning rate 0.1 is the edge of the grid: extend --head_learning_rates above it")


def test_a_flag_the_run_chose_is_never_advised_and_the_advice_reads_the_runs_own_files(tmp_path):
    chose = {"path": "cached", "pooling": {"rule": "pooler"},
             "args": {"study": {"pooling": "pooler", "probe": "logistic"}, "training": {"num_train_epochs": 10}}}
    assert diagnostics.collapse_advice(chose, {}) == "no cause this tool can name from the run's settings"
    auto = {**chose, "args": {**chose["args"], "study": {"pooling": "auto", "probe": "logistic"}}}
    assert diagnostics.collapse_advice(auto, {}).startswith("the head reads the pooler output")
    folder = tmp_path / "seed1"
    folder.mkdir()
    config = {"path": "cached", "args": {"study": {"standardize_features": True, "head_learning_rates": [0.1, 1.0]},
                                         "training": {"num_train_epochs": 10}}}
    for name, content in (("config.json", config), ("all_results.json", {"train_samples": 50}),
                          ("selection.json", {"chosen": {"learning_rate": 1.0}}),
                          ("convex.json", {"layers": {"4": {"gap": 0.0, "convex": 0.5, "head": 0.5}}})):
        (folder / name).write_text(json.dumps(content))
    assert diagnostics.collapse_advice_for(folder) == (
        "a convex probe on the same features scores 0.500 against the head's 0.500 (convex.json, layer 4): the "
        "features hold little of this task at these rows, not the head; more train rows or another layer "
        "(--probe_layers all); the chosen learning rate 1 is the edge of the grid: extend --head_learning_rates "
        "above it; only 50 train rows")
    (folder / "all_results.json").unlink()  # an incomplete run: no results to read
    assert diagnostics.collapse_advice_for(folder).endswith("extend --head_learning_rates above it")


def test_the_learning_rate_and_epoch_causes_at_their_edges():
    cached = {"path": "cached", "args": {"study": {"standardize_features": True}, "training": {}}}
    assert diagnostics.collapse_advice(cached, {}) == (
        "one learning rate (?) was tried: a grid chosen on a train hold-out, --head_learning_rates 1e-4 1e-3 1e-2 1e-1")
    one = {"path": "cached", "args": {"study": {"standardize_features": True, "head_learning_rates": [0.1]},
                                      "training": {"num_train_epochs": 3, "max_steps": 0}}}
    assert diagnostics.collapse_advice(one, {}, {"chosen": {"learning_rate": 0.1}}) == (
        "3 epoch(s): --num_train_epochs 10")  # a grid of one rate has no edge; max_steps 0 is not a step budget
    one["args"]["training"]["max_steps"] = 1  # a step budget: the epochs are not the cause
    assert diagnostics.collapse_advice(one, {}, {"chosen": {"learning_rate": 0.1}}) == (
        "no cause this tool can name from the run's settings")


def test_a_class_only_the_head_predicts_keeps_its_column_and_loses_its_empty_row():
    gold = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([0, 0, 2, 1, 1, 0])  # class 2: predicted once, never gold
    mcc, p = diagnostics.association_p(MNLI, pred, gold)
    table = [[2, 0, 1], [1, 2, 0]]  # gold 0 and 1 by prediction 0, 1, 2; gold 2's empty row dropped
    assert mcc > 0 and p == pytest.approx(sps.chi2_contingency(table, correction=False).pvalue)


def test_a_gold_class_of_one_row_stays_and_a_class_never_predicted_loses_its_empty_column():
    gold = np.array([0, 0, 0, 1, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 1, 0, 0])  # class 2: gold once, never predicted
    mcc, p = diagnostics.association_p(MNLI, pred, gold)
    table = [[2, 1], [1, 2], [1, 0]]  # gold 0, 1, 2 by prediction 0, 1; prediction 2's empty column dropped
    assert mcc > 0 and p == pytest.approx(sps.chi2_contingency(table, correction=False).pvalue)

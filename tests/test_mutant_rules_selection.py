"""Rules of fair head selection, stated with answers written out here (mutation testing, docs/mutants.md): the
hold-out cut, the grid and the choice of the setting."""

from types import SimpleNamespace

import numpy as np
import pytest

from frozen_glue.core.errors import UserError
from frozen_glue.core.tasks import get_task
from frozen_glue.training import selection


def test_the_hold_out_is_stratified_sorted_and_the_same_every_time():
    labels = [0] * 12 + [1] * 4
    fit, hold = selection.holdout_split(labels, 0.25, regression=False)
    assert len(hold) == 4 and sorted(np.asarray(labels)[hold]) == [0, 0, 0, 1]  # 3:1, as the split is
    assert list(fit) == sorted(fit) and list(hold) == sorted(hold) and sorted([*fit, *hold]) == list(range(16))
    again = selection.holdout_split(labels, 0.25, regression=False)
    assert [list(x) for x in again] == [list(fit), list(hold)]


def test_sts_b_is_stratified_by_the_integer_part_of_the_score():
    scores = [0.1, 0.5, 0.9, 0.2, 4.1, 4.9, 4.5, 4.2]  # two strata, 0 and 4: a plain split could take four from one
    for _ in range(3):
        _, hold = selection.holdout_split(scores, 0.25, regression=True)
        assert sorted(np.floor(np.asarray(scores)[hold])) == [0, 4]
    with pytest.raises(UserError, match="fewer than the 8 classes"):  # as classes, each float is its own
        selection.holdout_split(scores, 0.5, regression=False)


def test_a_hold_out_smaller_than_the_classes_is_refused_in_one_line():
    with pytest.raises(UserError) as refused:
        selection.holdout_split([0, 0, 1, 1, 2, 2, 0, 1, 2, 0], 0.2, regression=False)
    assert str(refused.value) == ("--selection_fraction 0.2 holds out 2 of 10 train rows, fewer than the 3 classes; "
                                  "raise it or use more rows")
    selection.holdout_split([0, 0, 1, 1, 2, 2, 0, 1, 2, 0], 0.3, regression=False)  # 3 of 10: enough


def test_the_grid_is_every_rate_with_every_decay_in_order():
    study = SimpleNamespace(head_learning_rates=[1e-2, 1e-3], head_weight_decays=[0.0, 0.1])
    assert selection.grid(study, SimpleNamespace(learning_rate=5, weight_decay=6)) == [
        (1e-2, 0.0), (1e-2, 0.1), (1e-3, 0.0), (1e-3, 0.1)]
    none = SimpleNamespace(head_learning_rates=None, head_weight_decays=None)
    assert selection.grid(none, SimpleNamespace(learning_rate=5, weight_decay=6)) == [(5, 6)]


def test_the_best_mean_over_seeds_wins_ties_go_to_the_first_and_nan_never_wins():
    task = get_task("sst2")  # accuracy
    gold = np.array([0, 1, 1, 0])
    right, wrong_one, wrong_two = [0, 1, 1, 0], [1, 1, 1, 0], [1, 0, 1, 0]
    predictions = {(1e-2, 0.0): {1: right, 2: wrong_two},      # mean (1 + 0.5) / 2 = 0.75
                   (1e-3, 0.0): {1: wrong_one, 2: wrong_one},  # 0.75: a tie, the first stays
                   (1e-4, 0.0): {1: right, 2: wrong_one}}      # 0.875: best
    out = selection.select(task, predictions, gold)
    assert out["chosen"] == {"learning_rate": 1e-4, "weight_decay": 0.0}
    assert out["metric"] == "accuracy" and out["higher_is_better"] is True
    assert out["grid"][0] == {"learning_rate": 1e-2, "weight_decay": 0.0, "scores": {1: 1.0, 2: 0.5}, "mean": 0.75}
    assert [row["mean"] for row in out["grid"]] == [0.75, 0.75, 0.875]
    tie = selection.select(task, {k: predictions[k] for k in list(predictions)[:2]}, gold)
    assert tie["chosen"]["learning_rate"] == 1e-2
    # a first setting whose metric is undefined (Pearson of constant scores) gives way to any defined one, even a
    # worse one; an undefined later one never replaces it
    stsb, scores = get_task("stsb"), np.array([1.0, 2.0, 3.0, 4.0])
    nan_first = {(1, 0): {1: [2.0] * 4}, (2, 0): {1: [4.0, 3.0, 2.0, 1.5]}, (3, 0): {1: [3.0] * 4}}
    chosen = selection.select(stsb, nan_first, scores)
    assert np.isnan(chosen["grid"][0]["mean"]) and chosen["chosen"]["learning_rate"] == 2


def test_the_hold_out_is_the_fraction_asked_for():
    labels = [0] * 8 + [1] * 8
    assert len(selection.holdout_split(labels, 0.5, regression=False)[1]) == 8
    assert len(selection.holdout_split(labels, 0.125, regression=False)[1]) == 2

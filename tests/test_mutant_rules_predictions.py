"""Rules of reading one model's predictions, stated with answers written out here (mutation testing,
docs/mutants.md): the seed vote, the join of two models' predictions, and read_predictions' combining of seeds,
its refusals and its copies."""

import json

import numpy as np
import pytest

from frozen_glue.core.errors import UserError
from frozen_glue.report import predictions

from test_mutant_rules_report import frame


def test_the_seed_vote_is_the_highest_mean_probability_and_ties_are_counted():
    mean_probs = [[0.2, 0.8], [0.5, 0.5], [0.6, 0.4], [0.3, 0.3 + 1e-13], [0.1, 0.9]]
    votes, ties = predictions.seed_vote(mean_probs)
    # an exact tie goes to the lowest class; a difference under 1e-12 is counted as a tie too
    assert votes.tolist() == [1, 0, 0, 1, 1] and ties == 2
    assert predictions.seed_vote([[0.3, 0.3 + 2e-12]]) == (pytest.approx([1]), 0)
    three = predictions.seed_vote([[0.2, 0.4, 0.4], [0.4, 0.4, 0.2], [0.1, 0.2, 0.7]])
    assert three[0].tolist() == [1, 0, 2] and three[1] == 2


def test_two_models_are_joined_on_idx_or_refused():
    a = frame([3, 1, 2], [1, 0, 1], prediction=[1, 1, 0])
    b = frame([1, 2, 3], [0, 1, 1], prediction=[0, 0, 1])
    ja, jb = predictions.join(a, b, ("A", "B"))
    assert list(jb.index) == [3, 1, 2] and jb["prediction"].tolist() == [1, 0, 0] and ja is a
    with pytest.raises(UserError) as refused:
        predictions.join(a, frame([1, 2, 4, 5], [0, 1, 1, 1]), ("A", "B"))
    assert str(refused.value) == ("the prediction files of A and B cover different examples (3 idx in one only): "
                                  "they were run on different data, compare runs of the same data")
    with pytest.raises(UserError) as refused:
        predictions.join(a, frame([1, 2, 3], [0, 1, 0]), ("A", "B"))
    assert str(refused.value) == "A and B disagree on gold labels for the same idx: different data"


def write_seed(root, model, task, seed, rows, results=None):
    folder = root / model / task / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"protocol_hash": "h", "protocol": {"probe": "head"}}))
    (folder / "predictions_validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if results is not None:
        (folder / "all_results.json").write_text(json.dumps(results))
    return folder


def rows(idx, labels, preds, probs, pvi=None):
    return [{"idx": i, "label": g, "prediction": p, "probs": pr, "sentence": f"s{i}",
             **({"pvi": v} if pvi is not None else {})} for i, g, p, pr, v in
            zip(idx, labels, preds, probs, pvi if pvi is not None else [None] * len(idx))]


def test_one_models_seeds_read_and_combined(tmp_path):
    write_seed(tmp_path, "m", "sst2", 1, rows([7, 3, 5], [1, 0, 1], [1, 0, 0], [[0.1, 0.9], [0.8, 0.2], [0.6, 0.4]],
                                              [1.0, 2.0, 3.0]), {"head_collapsed": True})
    write_seed(tmp_path, "m", "sst2", 2, rows([7, 3, 5], [1, 0, 1], [1, 0, 1], [[0.3, 0.7], [0.123456, 0.876544],
                                                                               [0.4, 0.6]], [3.0, 0.0, 1.0]), {})
    write_seed(tmp_path, "m", "sst2", 4, rows([7, 3, 5], [1, 0, 1], [0, 0, 0], [[0.9, 0.1]] * 3))  # incomplete
    write_seed(tmp_path, "m", "rte", 1, rows([1], [0], [0], [[0.9, 0.1]]), {})  # another task: never read
    out = predictions.read_predictions(tmp_path, "m", "sst2", "validation")
    assert list(out.index) == [7, 3, 5] and out["prediction"].tolist() == [1, 1, 0]  # mean probabilities vote
    assert out["probs"].tolist() == [[0.2, 0.8], [0.4617, 0.5383], [0.5, 0.5]]  # rounded to 4 places
    assert out.attrs["ties"] == 1 and out.attrs["collapsed"] == 1 and out.attrs["seeds"] == ["seed1", "seed2"]
    assert out.attrs["per_seed"].tolist() == [[1, 0, 0], [1, 0, 1]] and out["pvi"].tolist() == [2.0, 1.0, 2.0]
    assert list(out.columns) == ["label", "prediction", "sentence", "probs", "pvi"]
    one = predictions.read_predictions(tmp_path, "m", "sst2", "validation", seed=1)
    assert one["prediction"].tolist() == [1, 0, 0] and one.attrs["ties"] == 0 and one.attrs["seeds"] == ["seed1"]
    with pytest.raises(UserError) as refused:
        predictions.read_predictions(tmp_path, "m", "sst2", "validation", seed=4)
    assert str(refused.value) == (f"no complete run with predictions_validation.jsonl for model m on sst2 seed 4 under "
                                  f"{tmp_path} (1 incomplete run(s) skipped)")
    with pytest.raises(UserError) as refused:
        predictions.read_predictions(tmp_path, "m", "cola", "validation")
    assert str(refused.value) == f"no complete run with predictions_validation.jsonl for model m on cola under {tmp_path}"


def test_a_tie_in_one_run_keeps_that_runs_own_prediction(tmp_path):
    write_seed(tmp_path, "m", "sst2", 1, rows([1, 2], [1, 0], [1, 0], [[0.5, 0.5], [0.9, 0.1]]), {})
    out = predictions.read_predictions(tmp_path, "m", "sst2", "validation")
    assert out["prediction"].tolist() == [1, 0] and out.attrs["ties"] == 0  # one run: nothing combined


def test_runs_on_other_examples_are_refused_and_sts_b_scores_are_averaged(tmp_path):
    write_seed(tmp_path, "m", "sst2", 1, rows([1, 2], [1, 0], [1, 0], [[0.1, 0.9], [0.9, 0.1]]), {})
    write_seed(tmp_path, "m", "sst2", 2, rows([1, 2], [1, 0], [1, 0], [[0.1, 0.9], [0.9, 0.1]]), {})
    third = write_seed(tmp_path, "m", "sst2", 3, rows([1, 3], [1, 0], [1, 0], [[0.1, 0.9], [0.9, 0.1]]), {})
    with pytest.raises(UserError) as refused:
        predictions.read_predictions(tmp_path, "m", "sst2", "validation")
    first = tmp_path / "m" / "sst2" / "seed1" / "predictions_validation.jsonl"
    assert str(refused.value) == (f"{third / 'predictions_validation.jsonl'} holds other examples than {first}: runs "
                                  f"of m used different data")
    (third / "predictions_validation.jsonl").write_text("".join(  # the same idx, another gold label
        json.dumps(r) + "\n" for r in rows([1, 2], [1, 1], [1, 0], [[0.1, 0.9], [0.9, 0.1]])))
    with pytest.raises(UserError, match="holds other examples than"):
        predictions.read_predictions(tmp_path, "m", "sst2", "validation")
    for seed, scores in ((1, [1.0, 4.0]), (2, [2.0, 3.0])):
        write_seed(tmp_path, "s", "stsb", seed, [{"idx": i, "label": 2.5, "prediction": p, "score": p, "pvi": None,
                                                  "sentence1": "a", "sentence2": "b"} for i, p in zip([1, 2], scores)], {})
    sts = predictions.read_predictions(tmp_path, "s", "stsb", "validation")
    assert sts["prediction"].tolist() == [1.5, 3.5] and "score" not in sts.columns and "probs" not in sts.columns
    assert np.isnan(sts["pvi"]).all()  # STS-B has no PVI: null in every run, NaN here
    assert sts.attrs["config"] == {"protocol_hash": "h", "protocol": {"probe": "head"}}
    assert sts.attrs["protocol"] == {"probe": "head"}


def test_each_reader_gets_its_own_copy(tmp_path):
    write_seed(tmp_path, "m", "sst2", 1, rows([1, 2], [1, 0], [1, 0], [[0.1, 0.9], [0.9, 0.1]]), {})
    read = predictions.Predictions(tmp_path)
    first = read("m", "sst2", "validation")
    first.loc[1, "prediction"] = 0
    first.attrs["per_seed"][0, 0] = 0
    second = read("m", "sst2", "validation")
    assert second["prediction"].tolist() == [1, 0] and second.attrs["per_seed"].tolist() == [[1, 0]]

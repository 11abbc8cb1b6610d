"""One rule for every reader: each measure the report shows counts runs the way the tables do (layout.counted: a
deterministic probe's seeds are one run) and refuses to average runs of different identities (results.aggregate's
`mixed`). Parametrised over every reader, on hand-made trees with known answers."""

import argparse
import json

import pandas as pd
import pytest

from frozen_glue.core import layout
from frozen_glue.report import compare, information_report, predictions, report, results, zeroshot_report

from test_analysis import pred_rows, write_run


def tree(root, protocols):
    """Model m on sst2, one seed per protocol in `protocols`, every file a reader reads: all_results.json (accuracy,
    V-information), layer_results.json, mdl.json, selectivity.json, predictions; and a zero-shot run."""
    for seed, protocol in enumerate(protocols, start=1):
        folder = write_run(root, "m", "sst2", seed, {"accuracy": 0.7 + 0.01 * seed, "v_information": 0.1 * seed},
                           preds={"validation": pred_rows([0, 1, 1], [0, 1, seed % 2])})
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "protocol": protocol,
                                                        "protocol_hash": json.dumps(protocol, sort_keys=True)}))
        (folder / layout.LAYER_RESULTS_FILE).write_text(json.dumps({"0": {"eval_accuracy": 0.5 + 0.01 * seed},
                                                                    "2": {"eval_accuracy": 0.7 + 0.01 * seed}}))
        (folder / layout.MDL_FILE).write_text(json.dumps({"layers": {"2": {"codelength_kbits": seed,
                                                                           "compression": 1.0 + seed}}}))
        (folder / layout.SELECTIVITY_FILE).write_text(json.dumps({"layers": {"2": {
            "task": 0.7, "control": 0.6 - 0.01 * seed, "selectivity": 0.1 + 0.01 * seed}}}))
    zs = root / "m" / "sst2" / "zeroshot"
    zs.mkdir()
    (zs / "config.json").write_text(json.dumps({"path": "zeroshot"}))
    (zs / "all_results.json").write_text(json.dumps({"eval_accuracy": 0.6}))
    return root


def tables(runs_root):
    runs, _ = results.load_runs(runs_root)
    found, _ = layout.iter_runs(runs_root)
    return {"summary": results.summarize(runs).iloc[0],
            "layers": results.summarize_layers(results.load_layers(found)).iloc[-1],
            "mdl and selectivity": information_report.summarize_measures(
                information_report.load_measures(found)).iloc[0],
            "v_information": results.aggregate(information_report.v_information(found), ["model", "task"]).iloc[0],
            "zero-shot's probe": zeroshot_report.scores(runs, zeroshot_report.find(runs_root)[0]).iloc[0]}


READERS = ["summary", "layers", "mdl and selectivity", "v_information", "zero-shot's probe"]


def n_of(row):
    return row["probe_n"] if "probe_n" in row else row["n"]


def mixed_of(row):
    return row["probe_mixed"] if "probe_mixed" in row else row["mixed"]


@pytest.mark.parametrize("reader", READERS)
def test_a_deterministic_probe_is_one_run_for_every_reader(tmp_path, reader):
    root = tree(tmp_path / "runs", [{"probe": "logistic"}] * 5)
    row = tables(root)[reader]
    assert n_of(row) == 1 and not mixed_of(row)


@pytest.mark.parametrize("reader", READERS)
def test_seeded_runs_are_all_counted_by_every_reader(tmp_path, reader):
    root = tree(tmp_path / "runs", [{"learning_rate": 0.01}] * 3)
    row = tables(root)[reader]
    assert n_of(row) == 3 and not mixed_of(row)


@pytest.mark.parametrize("reader", READERS)
def test_mixed_settings_are_refused_by_every_reader(tmp_path, reader):
    root = tree(tmp_path / "runs", [{"learning_rate": 0.01}, {"learning_rate": 0.02}])
    row = tables(root)[reader]
    assert "learning_rate" in mixed_of(row)
    mean = row["probe_mean"] if "probe_mean" in row else row["mean"]
    assert mean is None or pd.isna(mean)  # never an average of the two


def test_the_example_level_reader_reads_one_run_of_a_deterministic_probe_and_refuses_a_mixed_one(tmp_path):
    root = tree(tmp_path / "one", [{"probe": "logistic"}] * 4)
    assert predictions.read_predictions(root, "m", "sst2", "validation").attrs["per_seed"].shape == (1, 3)
    root = tree(tmp_path / "mixed", [{"learning_rate": 0.01}, {"learning_rate": 0.02}])
    with pytest.raises(compare.UserError, match="different identities"):
        predictions.read_predictions(root, "m", "sst2", "validation")


def test_a_report_reads_each_models_predictions_once(tmp_path, monkeypatch):
    """Three models on two tasks: the report's pairs and sections all ask for predictions, and each model x task x
    split is read from disk once (not once per pair: m - 1 times); the frames handed out are copies."""
    root = tmp_path / "runs"
    for model in ("a", "b", "c"):
        for task, metric in (("sst2", "accuracy"), ("cola", "matthews_correlation")):
            write_run(root, model, task, 1, {metric: 0.5}, preds={"validation": pred_rows([0, 1, 1], [0, 1, 0])})
    reads = []
    real = predictions.read_predictions
    monkeypatch.setattr(predictions, "read_predictions", lambda *a, **k: reads.append(a[1:4]) or real(*a, **k))
    args = argparse.Namespace(runs=str(root), out=str(tmp_path / "rep"), reference=None, models=None, slice=[],
                              n_resamples=50, feature_cache=None)
    assert report.summarize(args) == 0
    assert sorted(reads) == sorted((m, t, "validation") for m in "abc" for t in ("cola", "sst2"))
    read = predictions.Predictions(root)
    frame = read("a", "sst2", "validation")
    frame.loc[0, "label"] = 9  # a caller's change stays its own
    assert read("a", "sst2", "validation").loc[0, "label"] == 0

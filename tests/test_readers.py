"""One rule for every reader: each measure the report shows counts runs the way the tables do (layout.counted: a
deterministic probe's seeds are one run) and refuses to average runs of different identities (results.aggregate's
`mixed`). Parametrised over every reader, on hand-made trees with known answers."""

import json

import pandas as pd
import pytest
from test_analysis import pred_rows, write_run

from frozen_glue import compare, information_report, layout, results, zeroshot_report


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
    assert compare.read_predictions(root, "m", "sst2", "validation").attrs["per_seed"].shape == (1, 3)
    root = tree(tmp_path / "mixed", [{"learning_rate": 0.01}, {"learning_rate": 0.02}])
    with pytest.raises(compare.UserError, match="different identities"):
        compare.read_predictions(root, "m", "sst2", "validation")

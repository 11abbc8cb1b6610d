"""Layer-wise probes (--probe_layers), the majority baseline, the random-init control, and their summaries."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from frozen_glue.config.models_file import read_models
from frozen_glue.core.errors import UserError
from frozen_glue.core.tasks import TASKS
from frozen_glue.features import cache as feature_cache
from frozen_glue.report import drift
from frozen_glue.report import results as run_results

from conftest import TRAIN, results, run


def args(assets, out, *extra, model="base", task="cola"):
    return ["--model_name_or_path", assets[model], "--task_name", task, "--glue_dir", assets["glue_dir"],
            "--output_dir", out, *TRAIN, *extra]


@pytest.mark.parametrize("model", ["base", "bert"])
def test_every_layer_from_one_forward_and_the_top_equals_a_plain_run(script, assets, tmp_path, capsys, model):
    seeds, probes = ["--seeds", "1", "2"], ["--feature_cache", tmp_path / "probe_cache"]
    before = feature_cache.stats["base_forward_batches"]
    assert run(script, capsys, *args(assets, tmp_path / "plain", *seeds, "--feature_cache", tmp_path / "cache",
                                     model=model))[0] == 0
    plain_forwards = feature_cache.stats["base_forward_batches"] - before
    before = feature_cache.stats["base_forward_batches"]
    code, out, _ = run(script, capsys, *args(assets, tmp_path / "layers", *seeds, *probes, "--probe_layers", "all",
                                             model=model))
    assert code == 0
    # all layers from the same forward pass as the plain run's: as many base batches, not one pass per layer
    assert feature_cache.stats["base_forward_batches"] - before == plain_forwards > 0
    for seed in ("seed1", "seed2"):
        layers = json.loads((tmp_path / "layers" / seed / "layer_results.json").read_text())
        assert list(layers) == ["0", "1", "2"]  # 2-block tiny models: embeddings + 2 blocks
        plain = results(tmp_path / "plain" / seed)
        # the top layer is the model's own head input: the same numbers as a plain run of the same seed
        assert layers["2"]["eval_loss"] == pytest.approx(plain["eval_loss"], abs=1e-6)
        assert layers["2"]["eval_matthews_correlation"] == plain["eval_matthews_correlation"]
        assert results(tmp_path / "layers" / seed)["eval_loss"] == pytest.approx(plain["eval_loss"], abs=1e-6)
        # lower layers are other features: other losses
        assert layers["0"]["eval_loss"] != pytest.approx(plain["eval_loss"], abs=1e-4)
    # a second run reads every layer from the cache
    before = feature_cache.stats["base_forward_batches"]
    assert run(script, capsys, *args(assets, tmp_path / "again", *seeds, *probes, "--probe_layers", "0", "2",
                                     model=model))[0] == 0
    assert feature_cache.stats["base_forward_batches"] == before
    assert list(json.loads((tmp_path / "again" / "seed1" / "layer_results.json").read_text())) == ["0", "2"]


def test_cache_entries_are_safetensors_read_memory_mapped(tmp_path):
    features = torch.randn(7, 5).to(torch.float16)
    path = tmp_path / "x.safetensors"
    writer = feature_cache.EntryWriter(path, 7, 5, torch.float16)
    writer.write([3, 0, 6, 1, 2, 5, 4], features[[3, 0, 6, 1, 2, 5, 4]].float())
    writer.close().replace(path)
    assert torch.equal(load_file(path)["features"], features)  # the safetensors library reads our file
    mapped = feature_cache.read_features(path)
    assert torch.equal(mapped, features)
    # memory-mapped, not read into RAM: a change to the file shows through the tensor already returned
    on_disk = np.memmap(path, dtype=np.float16, mode="r+", offset=path.stat().st_size - 7 * 5 * 2, shape=(7, 5))
    on_disk[6, 4] = 42.0
    on_disk.flush()
    assert mapped[6, 4].item() == 42.0


@pytest.mark.parametrize("extra, message", [
    (["--probe_layers", "all"], "--probe_layers needs --feature_cache DIR"),
    (["--probe_layers", "0", "9", "--feature_cache", "C"], "--probe_layers 9: "),
    (["--probe_layers", "top", "--feature_cache", "C"], "give 'all', 'last' or layer indices"),
    (["--probe_layers", "all", "--feature_cache", "C", "--freeze_base", "false"], "--probe_layers needs the cached"),
    (["--head_learning_rates", "1e-3"], "needs --feature_cache DIR"),
    (["--head_learning_rates", "0", "1e-3", "--feature_cache", "C"], "positive numbers"),
    (["--head_weight_decays", "-1", "--feature_cache", "C"], "numbers >= 0"),
    (["--probe", "logistic"], "needs --feature_cache DIR"),
    (["--probe", "svm", "--feature_cache", "C"], "--probe svm: use head or logistic"),
    (["--selection_fraction", "0.9", "--head_learning_rates", "1e-3", "--feature_cache", "C"], "(0, 0.5]"),
])
def test_bad_probe_and_selection_inputs_are_one_line(script, assets, tmp_path, capsys, extra, message):
    extra = [tmp_path / "c" if e == "C" else e for e in extra]
    code, _, err = run(script, capsys, *args(assets, tmp_path / "r", *extra))
    assert code == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "r" / "config.json").exists()  # refused before any run folder is written


def test_majority_baseline_known_answers(tmp_path):
    from frozen_glue.measures.diagnostics import majority_baseline

    # train majority class 1; validation gold [1, 0, 1, 1]: accuracy 3/4, F1 = 2*3 / (2*3 + 1) = 6/7, MCC 0
    mrpc = majority_baseline(TASKS["mrpc"], [1, 1, 0], [1, 0, 1, 1])
    assert mrpc["eval_majority_accuracy"] == pytest.approx(0.75) and mrpc["eval_majority_f1"] == pytest.approx(6 / 7)
    assert majority_baseline(TASKS["cola"], [0, 1, 1], [1, 0, 0])["eval_majority_matthews_correlation"] == 0.0
    # ties go to the lowest class id; MNLI's mismatched split keeps its suffix
    assert majority_baseline(TASKS["mnli"], [2, 1, 2, 1], [1, 1, 0], "_mm") == {
        "eval_majority_accuracy_mm": pytest.approx(2 / 3)}
    # STS-B: the train mean, a constant: Pearson is undefined (None, not NaN in JSON)
    assert majority_baseline(TASKS["stsb"], [1.0, 3.0], [0.5, 4.0])["eval_majority_pearson"] is None


def test_runs_carry_the_majority_baseline_and_random_init_is_another_base(script, assets, tmp_path, capsys):
    assert run(script, capsys, *args(assets, tmp_path / "a"))[0] == 0
    assert run(script, capsys, *args(assets, tmp_path / "r", "--random_init"))[0] == 0
    assert run(script, capsys, *args(assets, tmp_path / "r2", "--random_init", "--seed", "7"))[0] == 0
    a, r = (json.loads((tmp_path / d / "config.json").read_text()) for d in ("a", "r"))
    assert a["model_fingerprint"] != r["model_fingerprint"]
    # the random weights come from a fixed seed: the same random base for every training seed
    assert json.loads((tmp_path / "r2" / "config.json").read_text())["model_fingerprint"] == r["model_fingerprint"]
    assert r["protocol"]["random_init"] is True and a["protocol"]["random_init"] is False
    for run_dir in ("a", "r"):  # a constant prediction has MCC 0 whatever the model
        assert results(tmp_path / run_dir)["eval_majority_matthews_correlation"] == 0.0


def test_layer_summary_is_mean_and_sample_std_over_seeds(tmp_path):
    rows = [{"model": "m", "task": "cola", "seed": s, "layer": layer, "metric": "matthews_correlation",
             "value": v, "identity": "p", "deterministic": False, "setting": None} for s, layer, v in
            [(1, 0, 0.1), (2, 0, 0.3), (3, 0, 0.2), (1, 1, 0.5), (2, 1, 0.7), (3, 1, 0.3)]]
    summary = run_results.summarize_layers(pd.DataFrame(rows))
    assert list(summary["layer"]) == [0, 1]
    assert summary["mean"].tolist() == pytest.approx([0.2, 0.5])
    assert summary["std"].tolist() == pytest.approx([0.1, 0.2])  # ddof=1: sqrt(0.02 / 2), sqrt(0.08 / 2)
    best = run_results.best_layers(summary)
    assert best.loc[0, "best_layer"] == 1 and best.loc[0, "top_layer"] == 1
    # two models: Welch at the top layer and at each one's best layer; known answer for a = [.1 .3 .2] vs
    # b = [.5 .7 .3]: t = -0.3 / sqrt(.01/3 + .04/3), Welch-Satterthwaite df = (.05/3)^2 / ((.01/3)^2/2 + (.04/3)^2/2)
    from scipy import stats as sps

    other = [{**r, "model": "n", "value": v} for r, v in zip(rows, [0.5, 0.7, 0.3, 0.5, 0.7, 0.3])]
    both = pd.DataFrame(rows + other)
    tests = run_results.layer_tests(both, run_results.best_layers(run_results.summarize_layers(both)))
    t, df = -0.3 / np.sqrt(0.05 / 3), (0.05 / 3) ** 2 / ((0.01 / 3) ** 2 / 2 + (0.04 / 3) ** 2 / 2)
    best_row = tests[tests.layers == "best"].iloc[0]  # m's best layer 1 (0.5) vs n's best: tie -> layer 1
    assert (best_row.layer_a, best_row.layer_b) == (1, 1) and best_row.difference == pytest.approx(0.0)
    top_row = tests[tests.layers == "top"].iloc[0]
    assert top_row.welch_p == pytest.approx(1.0)
    m0, n0 = np.array([0.1, 0.3, 0.2]), np.array([0.5, 0.7, 0.3])
    assert run_results.layer_tests(both[both.layer == 0], pd.DataFrame([
        {"model": "m", "task": "cola", "best_layer": 0, "top_layer": 0},
        {"model": "n", "task": "cola", "best_layer": 0, "top_layer": 0}])).welch_p.iloc[0] == pytest.approx(
        2 * sps.t.sf(abs(t), df)) and m0.mean() - n0.mean() == pytest.approx(-0.3)
    rows[0]["identity"] = "q"  # a run of another identity: that layer is not averaged
    assert run_results.summarize_layers(pd.DataFrame(rows))["mean"].isna().tolist() == [True, False]


def drift_cli(*argv):
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run([sys.executable, ROOT / "analysis" / "drift.py", *map(str, argv)], capture_output=True,
                          text=True, cwd=ROOT)
    return proc.returncode, proc.stdout, proc.stderr


def test_drift_by_layer_against_itself_a_descendant_and_a_random_twin(script, assets, tmp_path, capsys):
    cache = tmp_path / "cache"
    for name, extra in (("base", []), ("comet", ["--tokenizer_name", assets["comet_tokenizer"]]),
                        ("random", ["--random_init"])):
        model = "comet" if name == "comet" else "base"
        assert run(script, capsys, *args(assets, tmp_path / "runs" / name, "--feature_cache", cache,
                                         "--probe_layers", "all", *extra, model=model))[0] == 0
    models = tmp_path / "models.tsv"
    models.write_text(f"base\t{assets['base']}\t-\t\t-\t-\n"
                      f"comet\t{assets['comet']}\t{assets['comet_tokenizer']}\t\t-\tbase\n"
                      f"random\t{assets['base']}\t-\t--random_init\t-\t-\n")
    code, out, err = drift_cli("--feature_cache", cache, "--task", "cola", "--models_file", models,
                               "--out", tmp_path / "rep")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "rep" / "drift_cola.csv")
    assert list(table["layer"]) == [0, 1, 2] and set(table["base"]) == {"base"} and set(table["derived"]) == {"comet"}
    assert (tmp_path / "rep" / "fig_drift_cola.png").stat().st_size > 0
    # a model against itself: 1 at every layer; against its random-init twin: lower at every layer
    known = {m.alias: m for m in read_models(models)}
    assert drift.layer_drift(cache, "cola", known["base"], known["base"])["cka"].tolist() == pytest.approx([1.0] * 3)
    assert (drift.layer_drift(cache, "cola", known["base"], known["random"])["cka"] < 0.95).all()
    # a `cp -r` copy under a second path: the same fingerprint, a cache hit, and both paths find the features
    shutil.copytree(assets["base"], tmp_path / "copy")
    code, out, _ = run(script, capsys, *args(assets, tmp_path / "runs" / "copy", "--feature_cache", cache,
                                             "--probe_layers", "all", "--model_name_or_path", tmp_path / "copy"))
    assert code == 0 and "(all splits from cache)" in out
    for name in (assets["base"], tmp_path / "copy"):
        assert drift.layer_drift(cache, "cola", str(name), known["base"])["cka"].tolist() == pytest.approx([1.0] * 3)
    # no features for that task: one line naming the command that makes them
    code, _, err = drift_cli("--feature_cache", cache, "--task", "sst2", "--models_file", models)
    assert code == 2 and err.count("\n") == 1 and "--probe_layers all" in err and "run_glue_frozen.py" in err
    # features of other validation rows: refused, not compared
    other = tmp_path / "other"
    layers = ["--probe_layers", "all"]
    assert run(script, capsys, *args(assets, tmp_path / "o1", "--feature_cache", other, *layers))[0] == 0
    assert run(script, capsys, *args(assets, tmp_path / "o2", "--feature_cache", other, "--probe_layers", "all",
                                     "--tokenizer_name", assets["comet_tokenizer"], "--max_eval_samples", "40",
                                     model="comet"))[0] == 0
    with pytest.raises(UserError, match="different rows or inputs"):
        drift.layer_drift(other, "cola", known["base"], known["comet"])


def test_head_selection_chooses_on_a_train_hold_out_and_retrains(script, assets, tmp_path, capsys):
    cache = ["--feature_cache", tmp_path / "cache", "--seeds", "1", "2"]
    grid = ["--head_learning_rates", "1e-5", "1e-2", "--head_weight_decays", "0", "0.01"]
    code, out, _ = run(script, capsys, *args(assets, tmp_path / "grid", *cache, *grid))
    assert code == 0 and "head selection on 40 held-out train rows" in out
    chosen = json.loads((tmp_path / "grid" / "seed1" / "selection.json").read_text())
    assert chosen == json.loads((tmp_path / "grid" / "seed2" / "selection.json").read_text())
    assert chosen["fit_rows"] == 360 and chosen["holdout_rows"] == 40 and len(chosen["grid"]) == 4
    # lr 1e-5 barely moves a head in 2 epochs: the grid must prefer 1e-2, and the means are the seeds' means
    assert chosen["chosen"]["learning_rate"] == 1e-2
    for row in chosen["grid"]:
        assert row["mean"] == pytest.approx(np.mean(list(row["scores"].values())))
    best = max(chosen["grid"], key=lambda r: r["mean"])
    assert best["mean"] == max(r["mean"] for r in chosen["grid"] if r["learning_rate"] == 1e-2)
    # the chosen setting retrained on the full train split is exactly a plain run with that setting
    setting = chosen["chosen"]
    assert run(script, capsys, *args(assets, tmp_path / "plain", *cache, "--learning_rate", setting["learning_rate"],
                                     "--weight_decay", setting["weight_decay"]))[0] == 0
    for seed in ("seed1", "seed2"):
        got, want = results(tmp_path / "grid" / seed), results(tmp_path / "plain" / seed)
        assert got["selected_learning_rate"] == setting["learning_rate"]
        assert got["eval_loss"] == pytest.approx(want["eval_loss"], abs=1e-6)


def test_holdout_is_stratified_fixed_and_disjoint():
    from frozen_glue.training.selection import holdout_split

    labels = [0] * 80 + [1] * 20
    fit, hold = holdout_split(labels, 0.1, regression=False)
    again = holdout_split(labels, 0.1, regression=False)
    assert list(hold) == list(again[1]) and not set(fit) & set(hold) and len(fit) + len(hold) == 100
    assert sorted(np.asarray(labels)[hold].tolist()) == [0] * 8 + [1] * 2  # the class shares of train


def test_logistic_probe_writes_a_run_folder(script, assets, tmp_path, capsys):
    code, _, _ = run(script, capsys, *args(assets, tmp_path / "log", "--feature_cache", tmp_path / "c", "--seeds",
                                           "1", "2", "--probe", "logistic", "--probe_layers", "0", "2"))
    assert code == 0
    r = results(tmp_path / "log" / "seed1")
    assert r["probe"] == "logistic" and r["probe_C"] > 0 and r["eval_matthews_correlation"] == 1.0
    assert results(tmp_path / "log" / "seed2")["eval_matthews_correlation"] == r["eval_matthews_correlation"]
    assert set(load_file(tmp_path / "log" / "seed1" / "head.safetensors")) == {
        "probe.mean", "probe.scale", "probe.coef", "probe.intercept"}
    assert list(json.loads((tmp_path / "log" / "seed1" / "layer_results.json").read_text())) == ["0", "2"]
    rows = [json.loads(line) for line in (tmp_path / "log" / "seed1" / "predictions_validation.jsonl").open()]
    assert all(abs(sum(row["probs"]) - 1) < 1e-4 for row in rows)


def test_logistic_probe_on_stsb_is_ridge(script, assets, tmp_path, capsys):
    from frozen_glue.demo import tiny

    glue = tiny.write_glue_dir(tmp_path / "glue", n_train=120, n_dev=40, tasks=("stsb",))
    code, _, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "stsb", "--glue_dir",
                       glue, "--output_dir", tmp_path / "r", *TRAIN, "--feature_cache", tmp_path / "c", "--probe",
                       "logistic")
    assert code == 0, err
    r = results(tmp_path / "r")
    assert r["probe_alpha"] > 0 and "probe_C" not in r and -1 <= r["eval_pearson"] <= 1
    assert r["eval_majority_pearson"] is None  # a constant prediction has no correlation
    rows = [json.loads(line) for line in (tmp_path / "r" / "predictions_validation.jsonl").open()]
    assert all(row["prediction"] == row["score"] for row in rows)

"""Fair probes at every layer: the head setting is chosen on the train hold-out for each layer, --head_from reuses
each layer's own head, --pooling reads what it says (and is part of the protocol and the cache key), and an
eval-only run carries the majority control."""

import json

import numpy as np
import pytest
import torch

from frozen_glue.core.tasks import TASKS
from frozen_glue.model import pooling

from conftest import TRAIN, results, run


def args(assets, out, *extra, model="base", task="sst2"):
    return ["--model_name_or_path", assets[model], "--task_name", task, "--glue_dir", assets["glue_dir"],
            "--output_dir", out, *TRAIN, *extra]


def test_each_layer_gets_its_own_head_setting_and_head_from_reuses_each_layers_head(script, assets, tmp_path,
                                                                                    capsys):
    grid = ["--head_learning_rates", "1e-3", "1e-2", "--head_weight_decays", "0"]  # layers 0-1 choose 1e-3, 2 1e-2
    common = ["--feature_cache", tmp_path / "cache", "--probe_layers", "all", "--seeds", "1", "2"]
    code, _, err = run(script, capsys, *args(assets, tmp_path / "grid", *common, *grid))
    assert code == 0, err
    selection = json.loads((tmp_path / "grid" / "seed1" / "selection.json").read_text())
    assert sorted(selection["layers"]) == ["0", "1", "2"] and selection["chosen"] == selection["layers"]["2"]["chosen"]
    layers = json.loads((tmp_path / "grid" / "seed1" / "layer_results.json").read_text())
    for layer, scores in layers.items():
        chosen = selection["layers"][layer]
        # each layer's setting is the best of ITS grid on the hold-out, and its results say which it was
        best = max(chosen["grid"], key=lambda row: row["mean"])
        assert chosen["chosen"]["learning_rate"] == best["learning_rate"] == scores["selected_learning_rate"]
    # each layer's retrained head equals that layer in a plain all-layer run with the layer's chosen setting
    chosen_lrs = {layer: c["chosen"]["learning_rate"] for layer, c in selection["layers"].items()}
    assert len(set(chosen_lrs.values())) == 2, chosen_lrs  # the grid is built so that the layers disagree
    for lr in set(chosen_lrs.values()):
        out = tmp_path / f"plain-{lr}"
        assert run(script, capsys, *args(assets, out, *common, "--learning_rate", lr, "--weight_decay", "0"))[0] == 0
        plain = json.loads((out / "seed1" / "layer_results.json").read_text())
        for layer in [k for k, v in chosen_lrs.items() if v == lr]:
            assert plain[layer]["eval_loss"] == pytest.approx(layers[layer]["eval_loss"], abs=1e-6), layer
    # --head_from: every layer evaluated with its own saved head gives back that run's layer results
    code, _, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "sst2", "--glue_dir",
                       assets["glue_dir"], "--output_dir", tmp_path / "eval", "--do_eval", "--use_cpu", "true",
                       "--feature_cache", tmp_path / "cache", "--probe_layers", "all", "--seeds", "1", "2",
                       "--head_from", tmp_path / "grid")
    assert code == 0, err
    again = json.loads((tmp_path / "eval" / "seed1" / "layer_results.json").read_text())
    for layer in ("0", "1", "2"):
        assert again[layer]["eval_loss"] == pytest.approx(layers[layer]["eval_loss"], abs=1e-6)
    # eval-only runs carry the majority control too
    assert results(tmp_path / "eval" / "seed1")["eval_majority_accuracy"] == results(
        tmp_path / "grid" / "seed1")["eval_majority_accuracy"]


def test_head_from_a_run_without_layer_heads_is_refused_for_lower_layers(script, assets, tmp_path, capsys):
    assert run(script, capsys, *args(assets, tmp_path / "top", "--feature_cache", tmp_path / "cache"))[0] == 0
    code, _, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "sst2", "--glue_dir",
                       assets["glue_dir"], "--output_dir", tmp_path / "eval", "--do_eval", "--use_cpu", "true",
                       "--feature_cache", tmp_path / "cache", "--probe_layers", "all", "--head_from", tmp_path / "top")
    assert code == 2 and err.count("\n") == 1 and "holds no head for layer(s) 0, 1" in err, err
    assert not (tmp_path / "eval" / "layer_results.json").exists()


def test_mean_pooling_known_answer():
    """Mean over the real tokens only: the padded position never counts."""
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])

    class Out:
        last_hidden_state = hidden
        hidden_states = (hidden * 0, hidden)

    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    got = pooling.pool_layers(Out, torch.zeros(2, 3, dtype=torch.long), "mean", 0, [0, 1], 1, mask)
    assert torch.equal(got[1], torch.tensor([[2.0, 3.0], [7.0, 8.0]]))
    assert torch.equal(got[0], torch.zeros(2, 2))
    last = pooling.pool_layers(Out, torch.tensor([[5, 6, 0], [5, 6, 7]]), "last_non_pad", 0, [1], 1)
    assert torch.equal(last[1], torch.tensor([[3.0, 4.0], [9.0, 10.0]]))


def test_pooling_mean_is_its_own_protocol_and_cache_entry(script, assets, tmp_path, capsys):
    cache = ["--feature_cache", tmp_path / "cache"]
    for choice in ("auto", "mean"):
        code, _, err = run(script, capsys, *args(assets, tmp_path / choice, *cache, "--pooling", choice,
                                                 model="bert"))
        assert code == 0, err
    auto, mean = (json.loads((tmp_path / c / "config.json").read_text()) for c in ("auto", "mean"))
    assert auto["pooling"]["rule"] == "pooler" and mean["pooling"]["rule"] == "mean"
    assert mean["pooling"]["position"] == "the mean over the text's tokens"
    assert auto["protocol_hash"] != mean["protocol_hash"] and mean["protocol"]["pooling"] == "mean"
    entries = sorted(p.name for p in (tmp_path / "cache").rglob("validation-*.safetensors"))
    assert len(entries) == 2  # two keys: the mean-pooled features are not served the pooler's
    assert results(tmp_path / "auto")["eval_loss"] != pytest.approx(results(tmp_path / "mean")["eval_loss"])


@pytest.mark.parametrize("extra, message", [
    (["--pooling", "mean"], "--pooling mean reads other positions than the model's own head"),
    (["--pooling", "max", "--feature_cache", "C"], "--pooling max: use one of auto, last, first, pooler, mean"),
    (["--pooling", "pooler", "--feature_cache", "C"], "--pooling pooler: a gpt2 model has no pooler"),
    (["--pooling", "mean", "--feature_cache", "C", "--base_dropout"], "--pooling needs the cached path"),
])
def test_bad_pooling_is_one_line(script, assets, tmp_path, capsys, extra, message):
    extra = [tmp_path / "c" if e == "C" else e for e in extra]
    code, _, err = run(script, capsys, *args(assets, tmp_path / "r", *extra))
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "r" / "all_results.json").exists()


def test_majority_control_of_an_eval_only_run_is_the_train_split_majority(script, assets, tmp_path, capsys):
    assert run(script, capsys, *args(assets, tmp_path / "t", task="cola"))[0] == 0
    code, _, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir",
                       assets["glue_dir"], "--output_dir", tmp_path / "e", "--do_eval", "--use_cpu", "true",
                       "--head_from", tmp_path / "t")
    assert code == 0, err
    assert results(tmp_path / "e")["eval_majority_matthews_correlation"] == 0.0
    assert "train" not in json.loads((tmp_path / "e" / "config.json").read_text())["data_fingerprints"]
    assert np.isfinite(results(tmp_path / "e")["eval_matthews_correlation"]) and TASKS["cola"].main_metric

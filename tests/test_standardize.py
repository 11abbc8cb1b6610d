"""--standardize_features (the head reads each dimension centred and scaled by the train rows' statistics) and
--probe_convex (a convex probe on the same features beside the trained head): known answers, the fast loop equal to
Trainer.train() with it, --head_from round trips, the refusals, and the report's flag for a head that trails."""

import json

import pytest
import torch
from safetensors.torch import load_file

from frozen_glue.training import cached_head

from conftest import TRAIN, assert_refused, run


def args(assets, out, *extra, task="sst2"):
    return ["--model_name_or_path", assets["base"], "--task_name", task, "--glue_dir", assets["glue_dir"],
            "--output_dir", out, *TRAIN, *extra]


def test_feature_stats_are_the_population_mean_and_std_and_1_for_a_constant_dimension():
    rows = torch.tensor([[1.0, 5.0, 0.0], [3.0, 5.0, 0.0], [8.0, 5.0, 3.0]])
    mean, scale = cached_head.feature_stats(rows, chunk=2)  # chunks of 2 rows: the sums run over both chunks
    assert mean.tolist() == pytest.approx([4.0, 5.0, 1.0])
    # population std (ddof=0, StandardScaler's): sqrt(((1-4)^2 + (3-4)^2 + (8-4)^2) / 3) = sqrt(26/3); ddof=1 gives
    # sqrt(13) instead. The constant column has std 0 and keeps scale 1 (it then reads 0)
    assert scale.tolist() == pytest.approx([(26 / 3) ** 0.5, 1.0, 2 ** 0.5])
    out = cached_head.Standardize(mean, scale)(rows)
    assert out[:, 1].tolist() == [0.0, 0.0, 0.0] and out[:, 0].tolist() == pytest.approx(
        [-3 / (26 / 3) ** 0.5, -1 / (26 / 3) ** 0.5, 4 / (26 / 3) ** 0.5])


def test_standardized_heads_train_alike_in_the_fast_loop_and_under_trainer_train(script, assets, tmp_path, capsys,
                                                                                   monkeypatch):
    # the fast loop standardises each batch itself; under Trainer.train() (forced here) CachedHead.forward does:
    # the same heads
    common = ["--feature_cache", tmp_path / "cache", "--standardize_features", "--seeds", "1", "2"]
    assert run(script, capsys, *args(assets, tmp_path / "fast", *common))[0] == 0
    from frozen_glue.config import contract
    from frozen_glue.training import head_training
    monkeypatch.setattr(contract, "fast_loop_fallback", lambda a: "forced by the test")
    trained = []
    monkeypatch.setattr(head_training.FastLoop, "run", lambda self: trained.append(1))
    assert run(script, capsys, *args(assets, tmp_path / "slow", *common))[0] == 0
    assert not trained  # the fast loop did not run
    for seed in ("seed1", "seed2"):
        fast, slow = (load_file(tmp_path / r / seed / "head.safetensors") for r in ("fast", "slow"))
        assert set(fast) == {"score.weight", "standardize.mean", "standardize.scale"}
        assert torch.equal(fast["standardize.mean"], slow["standardize.mean"])
        assert torch.allclose(fast["score.weight"], slow["score.weight"], atol=1e-5), seed


def test_a_standardized_head_is_its_own_protocol_and_round_trips_through_head_from(script, assets, tmp_path, capsys):
    common = ["--feature_cache", tmp_path / "cache", "--seeds", "1", "--probe_layers", "all"]
    assert run(script, capsys, *args(assets, tmp_path / "raw", *common))[0] == 0
    assert run(script, capsys, *args(assets, tmp_path / "std", *common, "--standardize_features"))[0] == 0
    raw, std = (json.loads((tmp_path / r / "seed1" / "config.json").read_text()) for r in ("raw", "std"))
    assert "standardize_features" not in raw["protocol"] and std["protocol"]["standardize_features"] is True
    assert raw["protocol_hash"] != std["protocol_hash"]
    heads = load_file(tmp_path / "std" / "seed1" / "head.safetensors")
    layer_heads = load_file(tmp_path / "std" / "seed1" / "layer_heads.safetensors")
    assert heads["standardize.mean"].shape == (32,) and bool((heads["standardize.scale"] > 0).all())
    # each layer reads its own features' statistics
    assert not torch.equal(layer_heads["layer0.standardize.mean"], layer_heads["layer2.standardize.mean"])
    assert torch.equal(layer_heads["layer2.standardize.mean"], heads["standardize.mean"])
    evaluated = ["--model_name_or_path", assets["base"], "--task_name", "sst2", "--glue_dir", assets["glue_dir"],
                 "--do_eval", "--use_cpu", "true", *common, "--head_from", tmp_path / "std"]
    assert run(script, capsys, *evaluated, "--output_dir", tmp_path / "again", "--standardize_features")[0] == 0
    first, again = (json.loads((tmp_path / r / "seed1" / "layer_results.json").read_text()) for r in ("std", "again"))
    for layer in first:
        assert again[layer]["eval_loss"] == pytest.approx(first[layer]["eval_loss"], abs=1e-6), layer
    code, _, err = run(script, capsys, *evaluated, "--output_dir", tmp_path / "plain")
    assert code == 2 and "was trained with --standardize_features: evaluate it with it too" in err, err


@pytest.mark.parametrize("extra, message", [
    (["--standardize_features"], "--standardize_features standardises cached features: add --feature_cache DIR"),
    (["--standardize_features", "--feature_cache", "C", "--probe", "logistic"],
     "--probe logistic standardises its features itself; drop --standardize_features"),
    (["--standardize_features", "--feature_cache", "C", "--save_full_model"],
     "--save_full_model saves a transformers model with its own head, which cannot hold the standardisation"),
    (["--probe_convex"], "--probe_convex scores a trained head beside a convex probe on the same cached features"),
    (["--probe_convex", "--feature_cache", "C", "--probe", "logistic"],
     "--probe_convex scores a trained head beside a convex probe on the same cached features: it needs"),
])
def test_standardize_and_convex_misuse_is_refused(script, capsys, assets, tmp_path, extra, message):
    assert_refused(script, capsys, assets, tmp_path, extra, message)


def test_probe_convex_scores_the_head_beside_the_convex_probe_and_the_report_flags_a_trailing_head(
        script, assets, tmp_path, capsys):
    out = tmp_path / "runs" / "base" / "sst2"
    assert run(script, capsys, *args(assets, out, "--feature_cache", tmp_path / "cache", "--seeds", "1", "2",
                                     "--probe_layers", "all", "--probe_convex"))[0] == 0
    files = {seed: json.loads((out / seed / "convex.json").read_text()) for seed in ("seed1", "seed2")}
    layers = json.loads((out / "seed1" / "layer_results.json").read_text())
    assert files["seed1"]["metric"] == "accuracy" and sorted(files["seed1"]["layers"]) == ["0", "1", "2"]
    for layer, cell in files["seed1"]["layers"].items():
        assert cell["head"] == pytest.approx(layers[layer]["eval_accuracy"])  # the run's own head at that layer
        assert cell["gap"] == pytest.approx(cell["convex"] - cell["head"])
        assert files["seed2"]["layers"][layer]["convex"] == cell["convex"]  # fitted once: deterministic
    # the report flags a layer where the head's seed mean trails by more than 0.05: layer 1 below trails by
    # 1.0 - (0.9 + 0.92) / 2 = 0.09; layer 2 by 1.0 - 0.96 = 0.04 (not flagged; a first-seed-only reading of
    # layer 1 would give 0.10, of layer 2 0.06)
    for seed, heads in (("seed1", {"0": 0.5, "1": 0.90, "2": 0.94}), ("seed2", {"0": 0.5, "1": 0.92, "2": 0.98})):
        content = files[seed]
        for layer, head in heads.items():
            content["layers"][layer] = {"head": head, "convex": 1.0 if layer != "0" else 0.5,
                                        "gap": (1.0 if layer != "0" else 0.5) - head}
        (out / seed / "convex.json").write_text(json.dumps(content))
    from frozen_glue.report import information_report
    lines = "\n".join(information_report.convex_section(tmp_path / "runs"))
    assert "⚠ 1 of 3 judged task x model x layer cell(s) trail it" in lines and "not judged" not in lines
    assert "| sst2   | base    |       1 |   0.91 |        1 |  0.09 |" in lines, lines
    for seed in ("seed1", "seed2"):
        content = json.loads((out / seed / "convex.json").read_text())
        content["layers"]["1"] = {"head": 0.99, "convex": 1.0, "gap": 0.01}
        (out / seed / "convex.json").write_text(json.dumps(content))
    assert "Every head is within 0.05 of the convex probe at all 3 judged" in "\n".join(
        information_report.convex_section(tmp_path / "runs"))
    # an undefined gap (a constant score: MCC of one class) is not judged, and never counted as "within"
    for seed in ("seed1", "seed2"):
        content = json.loads((out / seed / "convex.json").read_text())
        content["layers"]["0"] = {"head": None, "convex": 0.5, "gap": None}
        (out / seed / "convex.json").write_text(json.dumps(content))
    lines = "\n".join(information_report.convex_section(tmp_path / "runs"))
    assert "1 cell(s) have no gap and are not judged" in lines and "at all 2 judged" in lines, lines


def test_convex_gap_is_the_probe_minus_the_head_on_each_split():
    """Known answer: separable train features, so the convex probe scores 1.0 on dev; a head that always says
    class 0 scores 1/4 on a dev set with three class-1 rows. gap = convex - head = +0.75 (head - convex: -0.75)."""
    from types import SimpleNamespace

    from transformers.trainer_utils import PredictionOutput

    from frozen_glue.core import tasks
    from frozen_glue.science import information_probes

    class Constant:
        def predict(self, dataset, metric_key_prefix="eval"):
            return PredictionOutput(predictions=[[1.0, 0.0]] * len(dataset.labels), label_ids=None, metrics={})

    gen = torch.Generator().manual_seed(0)
    train_labels = [0, 1] * 20
    train = torch.randn(40, 3, generator=gen) + torch.tensor(train_labels).unsqueeze(1) * 6.0
    dev_labels = [0, 1, 1, 1]
    dev = torch.randn(4, 3, generator=gen) + torch.tensor(dev_labels).unsqueeze(1) * 6.0
    data = {0: {"train": cached_head.FeatureDataset(train, train_labels, False),
                "validation": cached_head.FeatureDataset(dev, dev_labels, False)}}
    prep = SimpleNamespace(task=tasks.get_task("sst2"), folders={"seed1": None},
                           raw={"validation": {"label": dev_labels}})
    cell = information_probes.convex(prep, [0], data, {(0, "seed1"): Constant()})["seed1"]["layers"]["0"]
    assert (cell["head"], cell["convex"]) == (0.25, 1.0) and cell["gap"] == pytest.approx(0.75)

"""The cached path: exact parity with the Trainer path, zero base forwards on a hit, keys, corruption."""

import json

import pytest
import torch
from safetensors.torch import load_file

from frozen_glue.features import cache as feature_cache
from frozen_glue.features import cache_layout
from frozen_glue.report import results as run_results
from frozen_glue.features.cache_key import cache_parts

from conftest import TRAIN, results, run


def args_for(assets, model, out, task="cola", *extra):
    paths = {"gpt2": ["--model_name_or_path", assets["base"]],
             "comet": ["--model_name_or_path", assets["comet"], "--tokenizer_name", assets["comet_tokenizer"]],
             "bert": ["--model_name_or_path", assets["bert"]]}[model]
    return [*paths, "--task_name", task, "--glue_dir", assets["glue_dir"], "--output_dir", out, *TRAIN,
            "--weight_decay", "0.01", "--warmup_steps", "3", *extra]


@pytest.mark.parametrize("model", ["gpt2", "bert"])
def test_cached_path_equals_trainer_path(script, assets, tmp_path, capsys, model):
    """Two seeds, so the cached path trains them together (stacked; BERT's head dropout included)."""
    trainer_out, cached_out = tmp_path / "trainer", tmp_path / "cached"
    assert run(script, capsys, *args_for(assets, model, trainer_out), "--seeds", "3", "4")[0] == 0
    code, out, err = run(script, capsys, *args_for(assets, model, cached_out), "--seeds", "3", "4",
                         "--feature_cache", tmp_path / "cache")
    assert code == 0, err
    for seed in ("seed3", "seed4"):
        a, b = results(trainer_out / seed), results(cached_out / seed)
        for key in ("eval_matthews_correlation", "eval_loss"):
            assert a[key] == pytest.approx(b[key], abs=1e-4)
        ha, hb = load_file(trainer_out / seed / "head.safetensors"), load_file(cached_out / seed / "head.safetensors")
        assert set(ha) == set(hb) and len(ha) == (1 if model == "gpt2" else 2)
        for k in ha:
            assert torch.allclose(ha[k], hb[k], atol=1e-4), (seed, k)
        assert json.loads((cached_out / seed / "config.json").read_text())["path"] == "cached"
        assert json.loads((trainer_out / seed / "config.json").read_text())["path"] == "trainer"
    assert not torch.equal(load_file(cached_out / "seed3" / "head.safetensors")[list(ha)[0]],
                           load_file(cached_out / "seed4" / "head.safetensors")[list(ha)[0]])
    # the seeds shared one stacked loop: their train_runtime is the shared time split evenly
    runtimes = {json.loads((cached_out / s / "train_results.json").read_text())["train_runtime"] for s in ("seed3", "seed4")}
    assert len(runtimes) == 1


def test_second_run_does_no_base_forward(script, assets, tmp_path, capsys):
    cache = tmp_path / "cache"
    before = feature_cache.stats["base_forward_batches"]
    assert run(script, capsys, *args_for(assets, "comet", tmp_path / "a"), "--seeds", "1", "--feature_cache", cache)[0] == 0
    assert feature_cache.stats["base_forward_batches"] > before
    before = feature_cache.stats["base_forward_batches"]
    code, out, _ = run(script, capsys, *args_for(assets, "comet", tmp_path / "b"), "--seeds", "2", "3",
                       "--learning_rate", "5e-3", "--feature_cache", cache)
    assert code == 0
    assert feature_cache.stats["base_forward_batches"] == before
    assert "0 base forward batches this run (all splits from cache)" in out


def test_five_seeds_make_five_runs_indistinguishable_from_trainer_runs(script, assets, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert run(script, capsys, *args_for(assets, "gpt2", runs / "cached" / "cola"), "--seeds", "1", "2", "3", "4", "5",
               "--feature_cache", tmp_path / "cache")[0] == 0
    assert run(script, capsys, *args_for(assets, "gpt2", runs / "trainer" / "cola"), "--seeds", "1", "2", "3", "4",
               "5")[0] == 0
    table, warnings = run_results.load_runs(runs)
    assert not warnings and len(table) == 10
    assert set(table.loc[table.model == "cached", "path"]) == {"cached"}
    for seed in range(1, 6):
        files = {m: sorted(p.name for p in (runs / m / "cola" / f"seed{seed}").iterdir()) for m in ("cached", "trainer")}
        assert files["cached"] == files["trainer"]
        keys = {m: set(results(runs / m / "cola" / f"seed{seed}")) for m in ("cached", "trainer")}
        assert keys["cached"] == keys["trainer"]
        configs = {m: json.loads((runs / m / "cola" / f"seed{seed}" / "config.json").read_text()) for m in keys}
        assert set(configs["cached"]) == set(configs["trainer"])
        # the five seeds' heads trained together (stacked) equal five separate Trainer runs
        heads = {m: load_file(runs / m / "cola" / f"seed{seed}" / "head.safetensors") for m in keys}
        assert torch.allclose(heads["cached"]["score.weight"], heads["trainer"]["score.weight"], atol=1e-4)
        metric = {m: results(runs / m / "cola" / f"seed{seed}")["eval_matthews_correlation"] for m in keys}
        assert metric["cached"] == pytest.approx(metric["trainer"], abs=1e-4)
    summary = run_results.summarize(table)
    assert list(summary["n"]) == [5, 5]
    assert summary["mean"].iloc[0] == pytest.approx(summary["mean"].iloc[1], abs=1e-4)


def study(script, *args):
    return script.prepare(*script.parse_args([str(a) for a in args]))


def test_each_key_component_changes_the_key(script, assets, tmp_path):
    base = args_for(assets, "gpt2", tmp_path / "r", "cola", "--feature_cache", tmp_path / "c")
    reference = study(script, *base)
    key = cache_layout.feature_key(**cache_parts(reference, "train"))
    variants = {
        "model weights": args_for(assets, "comet", tmp_path / "r", "cola", "--feature_cache", tmp_path / "c"),
        "tokenizer": [*base, "--tokenizer_name", assets["comet_tokenizer"]],
        "max_seq_length": [*base, "--max_seq_length", "64"],
        "data": [*base, "--max_train_samples", "50"],
        "pooling input (append_eos)": [*base, "--append_eos"],
    }
    keys = {}
    for name, args in variants.items():
        keys[name] = cache_layout.feature_key(**cache_parts(study(script, *args), "train"))
        assert keys[name] != key, name
    assert len(set(keys.values())) == len(keys)
    assert cache_layout.feature_key(**cache_parts(study(script, *base), "train")) == key  # stable


def test_truncated_cache_file_is_rebuilt(script, assets, tmp_path, capsys, caplog):
    cache = tmp_path / "cache"
    assert run(script, capsys, *args_for(assets, "gpt2", tmp_path / "a"), "--seeds", "1", "--feature_cache", cache)[0] == 0
    [train_file] = cache.glob("*/cola/train-*.safetensors")
    good = train_file.read_bytes()
    train_file.write_bytes(good[: len(good) // 2])
    before = feature_cache.stats["base_forward_batches"]
    code, _, err = run(script, capsys, *args_for(assets, "gpt2", tmp_path / "b"), "--seeds", "1", "--feature_cache", cache)
    assert code == 0, err
    assert feature_cache.stats["base_forward_batches"] > before
    assert "missing or truncated" in caplog.text
    assert train_file.read_bytes() == good
    key = "eval_matthews_correlation"
    assert results(tmp_path / "a" / "seed1")[key] == results(tmp_path / "b" / "seed1")[key]


def test_corrupt_bytes_of_same_size_are_detected(assets, tmp_path):
    features = torch.randn(10, 4)
    feature_cache.save_entry(tmp_path, "fp" * 20, "cola", "train", "k" * 64, features, {})
    assert torch.equal(feature_cache.load_entry(tmp_path, "fp" * 20, "cola", "train", "k" * 64), features)
    data_path, _ = cache_layout.entry_paths(tmp_path, "fp" * 20, "cola", "train", "k" * 64)
    raw = bytearray(data_path.read_bytes())
    raw[-1] ^= 0xFF
    data_path.write_bytes(bytes(raw))
    assert feature_cache.load_entry(tmp_path, "fp" * 20, "cola", "train", "k" * 64) is None


def test_cache_not_used_when_base_trains(script, assets, tmp_path, capsys):
    code, out, _ = run(script, capsys, *args_for(assets, "gpt2", tmp_path / "r"), "--unfreeze_top_layers", "1",
                       "--feature_cache", tmp_path / "cache")
    assert code == 0
    assert "feature cache not used" in out
    assert json.loads((tmp_path / "r" / "config.json").read_text())["path"] == "trainer"
    assert not (tmp_path / "cache").exists()


def test_float16_features_are_stored_as_float16(script, assets, tmp_path, capsys):
    code, out, _ = run(script, capsys, *args_for(assets, "gpt2", tmp_path / "r"), "--seeds", "1",
                       "--feature_cache", tmp_path / "cache", "--feature_dtype", "float16")
    assert code == 0 and "MB on disk" in out
    [meta] = (tmp_path / "cache").glob("*/cola/train-*.json")
    assert json.loads(meta.read_text())["dtype"] == "torch.float16"


def test_fallback_to_trainer_train_keeps_each_seeds_rng(script, assets, tmp_path, capsys):
    """Gradient accumulation is not covered by the fast loop: trainer.train() runs, and each seed still starts
    from its own RNG state (its Trainer was built before the others trained)."""
    extra = ["--gradient_accumulation_steps", "2"]
    assert run(script, capsys, *args_for(assets, "gpt2", tmp_path / "t", "cola", *extra), "--seeds", "5", "6")[0] == 0
    assert run(script, capsys, *args_for(assets, "gpt2", tmp_path / "c", "cola", *extra), "--seeds", "5", "6",
               "--feature_cache", tmp_path / "cache")[0] == 0
    for seed in ("seed5", "seed6"):
        a, b = load_file(tmp_path / "t" / seed / "head.safetensors"), load_file(tmp_path / "c" / seed / "head.safetensors")
        assert torch.allclose(a["score.weight"], b["score.weight"], atol=1e-4), seed


def test_token_budget_batches_are_length_sorted_and_within_budget():
    lengths = [5, 1, 9, 3, 3, 7, 2]
    assert feature_cache.batches(lengths, 3) == [[1, 6, 3], [4, 0, 5], [2]]
    budgeted = feature_cache.batches(lengths, 3, tokens_per_batch=9)
    assert budgeted == [[1, 6, 3], [4], [0], [5], [2]]  # 3 rows x 3 tokens fit in 9; 2 x 5 would not
    assert all(len(b) * max(lengths[i] for i in b) <= 9 or len(b) == 1 for b in budgeted)
    assert sorted(i for b in budgeted for i in b) == list(range(len(lengths)))


def test_token_budget_gives_the_same_features(script, assets, tmp_path, capsys):
    for name, extra in (("fixed", []), ("budget", ["--extraction_tokens_per_batch", "200"])):
        assert run(script, capsys, *args_for(assets, "gpt2", tmp_path / name), "--feature_cache", tmp_path / name / "c",
                   *extra)[0] == 0
    [a], [b] = ((tmp_path / n / "c").glob("*/cola/validation-*.safetensors") for n in ("fixed", "budget"))
    assert a.name == b.name  # the budget is not part of the key: it does not change the features
    assert torch.allclose(load_file(a)["features"], load_file(b)["features"], atol=1e-5)


def test_two_processes_writing_the_same_entry_leave_one_valid_entry(assets, tmp_path):
    """Two jobs of a shared cache (a Slurm array, two launchers) extract the same entry at once: both finish, and
    the entry is whole and equal to a single writer's."""
    import subprocess
    import sys

    from conftest import ROOT

    cache = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, ROOT / "run_glue_frozen.py",
                               *map(str, args_for(assets, "gpt2", tmp_path / f"job{i}")), "--feature_cache", cache],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not list(cache.rglob("*.tmp"))  # no temp file left behind
    for entry in cache.glob("*/cola/*.safetensors"):
        meta = json.loads(entry.with_suffix(".json").read_text())
        assert feature_cache.load_entry(cache, meta["parts"]["model_fp"], "cola", entry.name.split("-")[0],
                                        meta["key"]) is not None
    assert results(tmp_path / "job0")["eval_loss"] == results(tmp_path / "job1")["eval_loss"]

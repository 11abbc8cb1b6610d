"""Known answers that a plausible one-line bug cannot pass (issue 20's surviving mutants): McNemar on the
discordant cells, Holm inside the slice table, "complete" = all_results.json exists AND parses, every part of the
feature-cache key, and a cache entry never served for another dtype or shape."""

import copy
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from frozen_glue.core.layout import is_complete, read_results
from frozen_glue.features import cache as feature_cache
from frozen_glue.features import cache_layout
from frozen_glue.report import compare
from frozen_glue.features.cache_key import cache_parts

from conftest import ROOT, TRAIN, plan_sweep, run

# ------------------------------------------------------------------------------------------------- McNemar


def frame(gold, pred, texts=None):
    texts = texts or [f"s {i}" for i in range(len(gold))]
    return pd.DataFrame({"label": gold, "prediction": pred, "sentence": texts,
                         "probs": [[1.0 - p, float(p)] for p in pred]}, index=pd.Index(range(len(gold)), name="idx"))


def test_mcnemar_through_the_disagreement_table_uses_the_discordant_cells():
    """Both right 70, only A 10, only B 2, both wrong 18: exact two-sided p = 2 * P(Bin(12, 1/2) <= 2) =
    2 * (1 + 12 + 66) / 4096 = 0.0386. On the concordant cells (70 vs 18) p would be < 1e-8, and on all four
    nothing like it: the counts are asymmetric on purpose."""
    cells = [(1, 1)] * 70 + [(1, 0)] * 10 + [(0, 1)] * 2 + [(0, 0)] * 18  # (A right, B right)
    gold = np.array([i % 2 for i in range(100)])
    pa = np.where([a for a, _ in cells], gold, 1 - gold)
    pb = np.where([b for _, b in cells], gold, 1 - gold)
    res, table = compare.disagreement("sst2", frame(gold, pa), frame(gold, pb), ("A", "B"), n_resamples=200)
    assert (res["both_right"], res["only_a_right"], res["only_b_right"], res["both_wrong"]) == (70, 10, 2, 18)
    assert res["mcnemar_p"] == pytest.approx(158 / 4096) and round(res["mcnemar_p"], 4) == 0.0386
    assert res["test_p"] == res["mcnemar_p"] and (res["a_better"], res["b_better"]) == (10, 2)
    assert res["disagree"] == 12 and len(table) == 12


# ------------------------------------------------------------------------------------------- Holm in slices


def test_holm_inside_the_slice_table_flips_a_decision(monkeypatch):
    """Four tested slices with raw p 0.01, 0.015, 0.04, 0.5 (the bootstrap is replaced by those p, keyed by slice
    size, so the answer is by hand): Holm gives 4 * 0.01 = 0.04, max(0.04, 3 * 0.015) = 0.045, 2 * 0.04 = 0.08,
    0.5. The raw 0.04 slice is significant without Holm and not with it; Bonferroni would drop the 0.015 one."""
    p_by_size = {12: 0.01, 14: 0.015, 16: 0.04, 60: 0.5}
    monkeypatch.setattr(compare, "hierarchical_distribution",
                        lambda metric, pa, pb, gold, n_resamples: (0.0, np.zeros(len(gold))))
    monkeypatch.setattr(compare, "bootstrap_p", lambda dist: p_by_size[len(dist)])
    texts = ["xx yy zz"] * 12 + ["qq yy zz"] * 14 + ["rr yy zz"] * 16 + ["ww yy zz"] * 18
    gold = np.array([i % 2 for i in range(60)])
    table = compare.slices("cola", frame(gold, gold, texts), frame(gold, gold, texts), ("A", "B"),
                           user_slices=["x=^xx", "q=^qq", "r=^rr"]).set_index("slice")
    tested = table[table["p"].notna()]
    assert sorted(tested.index) == ["length 1-5", "q", "r", "x"]
    assert tested.loc[["x", "q", "r", "length 1-5"], "p_holm"].tolist() == pytest.approx([0.04, 0.045, 0.08, 0.5])
    assert tested.loc[["x", "q", "r", "length 1-5"], "significant"].tolist() == [True, True, False, False]


# ------------------------------------------------------------------------------------------ torn all_results


def sweep_env(tmp_path, assets, **extra):
    models = tmp_path / "one.tsv"
    models.write_text(f"gpt2\t{assets['base']}\t-\t\n")
    return {**os.environ, "PYTHON": sys.executable, "MODELS": str(models), "RUNS": str(tmp_path / "runs"),
            "GLUE_DIR": str(assets["glue_dir"]), "TASKS": "cola", "SEEDS": "1", "LAUNCHER": "python",
            "EXTRA_ARGS": "--num_train_epochs 1 --per_device_train_batch_size 16 --disable_tqdm true", **extra}


def launch(env):
    proc = subprocess.run(["bash", str(ROOT / "launch" / "all_tasks.sh")], capture_output=True, text=True, env=env,
                          timeout=600, cwd=ROOT)
    return proc.returncode, proc.stdout + proc.stderr


def test_torn_all_results_is_planned_again_and_redone(tmp_path, assets, monkeypatch, capsys):
    """A truncated all_results.json (a crash mid-copy, a full disk) makes a run incomplete: the sweep plans it again
    (DRY_RUN), and the rerun completes it with a file that parses."""
    env = sweep_env(tmp_path, assets)
    code, out = launch(env)
    folder = tmp_path / "runs" / "gpt2" / "cola" / "seed1"
    assert code == 0 and is_complete(folder), out
    plan = {k: v for k, v in env.items() if k not in os.environ or os.environ[k] != v}
    code, out = plan_sweep(monkeypatch, capsys, {**plan, "DRY_RUN": "1"})
    assert code == 0 and "run_glue_frozen.py" not in out  # complete: nothing planned
    path = folder / "all_results.json"
    whole = path.read_text()
    path.write_text(whole[: len(whole) // 2])
    assert not is_complete(folder) and read_results(folder) is None
    code, out = plan_sweep(monkeypatch, capsys, {**plan, "DRY_RUN": "1"})
    assert code == 0 and sum("run_glue_frozen.py" in line for line in out.splitlines()) == 1, out
    code, out = launch(env)
    assert code == 0 and is_complete(folder), out
    assert set(json.loads(path.read_text())) == set(json.loads(whole))


# ------------------------------------------------------------------------------------------ feature-cache key


def args_for(assets, out, *extra):
    return ["--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir", assets["glue_dir"],
            "--output_dir", out, *TRAIN, "--feature_cache", out.parent / "cache", *extra]


def study(script, *args):
    return script.prepare(*script.parse_args([str(a) for a in args]))


def other_config(prep, **changes):
    config = copy.deepcopy(prep.config)
    for k, v in changes.items():
        setattr(config, k, v)
    return dataclasses.replace(prep, config=config)


def test_every_part_of_the_cache_key_varied_alone_changes_it(script, assets, tmp_path):
    """Each flag changes its own part of cache_key.cache_parts and no other (a part dropped from the key fails here,
    whatever else changes with it) and the key with it."""
    reference = study(script, *args_for(assets, tmp_path / "r"))
    ref_parts = cache_parts(reference, "train")
    variants = {
        "max_seq_length": study(script, *args_for(assets, tmp_path / "r", "--max_seq_length", "64")),
        "pad_to_max_length": study(script, *args_for(assets, tmp_path / "r", "--pad_to_max_length")),
        "dtype": study(script, *args_for(assets, tmp_path / "r", "--feature_dtype", "float16")),
        "precision": study(script, *args_for(assets, tmp_path / "r", "--bf16", "true")),
        "data": study(script, *args_for(assets, tmp_path / "r", "--max_train_samples", "50")),
        # --pooling decides where the head reads; the pad id, which position is the last real token
        "pooling": study(script, *args_for(assets, tmp_path / "r", "--pooling", "mean")),
        "pad_token_id": other_config(reference, pad_token_id=3),
    }
    keys = {cache_layout.feature_key(**ref_parts)}
    for part, prep in variants.items():
        parts = cache_parts(prep, "train")
        changed = {k for k in parts if parts[k] != ref_parts[k]}
        # the tokenizer's fingerprint also sees the truncation length; max_seq_length must not rest on that
        assert part in changed and changed - {part} <= ({"tokenizer"} if part == "max_seq_length" else set()), part
        keys.add(cache_layout.feature_key(**parts))
    assert len(keys) == len(variants) + 1
    assert set(ref_parts) >= {"model_fp", "tokenizer", "append_eos"}  # varied in test_feature_cache.py


def test_warm_cache_rerun_with_another_feature_dtype_is_not_served_the_old_entry(script, assets, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert run(script, capsys, *args_for(assets, tmp_path / "a", "--seeds", "1"))[0] == 0
    before = feature_cache.stats["base_forward_batches"]
    code, _, err = run(script, capsys, *args_for(assets, tmp_path / "b", "--seeds", "1", "--feature_dtype", "float16"))
    assert code == 0, err
    assert feature_cache.stats["base_forward_batches"] > before  # extracted anew, not served the float32 entry
    dtypes = sorted(json.loads(p.read_text())["dtype"] for p in cache.glob("*/cola/train-*.json"))
    assert dtypes == ["torch.float16", "torch.float32"]


def test_load_entry_checks_dtype_and_shape_against_the_request(tmp_path, caplog):
    features = torch.randn(10, 4)
    feature_cache.save_entry(tmp_path, "fp" * 20, "cola", "train", "k" * 64, features, {})

    def load(**want):
        return feature_cache.load_entry(tmp_path, "fp" * 20, "cola", "train", "k" * 64, **want)

    assert torch.equal(load(dtype=torch.float32, shape=(10, 4)), features)
    assert torch.equal(load(), features)
    assert load(dtype=torch.float16, shape=(10, 4)) is None
    assert load(dtype=torch.float32, shape=(11, 4)) is None and load(shape=(10, 5)) is None
    assert "not (10, 5) torch.float32" in caplog.text


# ------------------------------------------------------------------------------------------------- metrics


def test_fast_f1_without_any_positive_is_zero_as_sklearn_says():
    """Gold and predictions all negative: no true positive and no error, F1 = 0/0, which sklearn reports as 0.0.
    The vectorized form must say 0.0 too, not NaN or 1 (mutmut's survivors of the guard, docs/mutants.md)."""
    from sklearn.metrics import f1_score

    from frozen_glue.core.metrics import get_metric

    zeros = np.zeros(6)
    assert f1_score(zeros, zeros, zero_division=0.0) == 0.0
    fast = get_metric("f1").fast
    assert fast(zeros, zeros) == 0.0
    batch = np.stack([zeros, np.array([1, 0, 0, 0, 0, 0.0])])  # with a resample that has one right positive
    assert fast(batch, np.stack([zeros, batch[1]])).tolist() == [0.0, 1.0]


# ------------------------------------------------------------------------------------------ stats at 2 seeds


def test_two_seeds_have_a_std_and_a_welch_p():
    """Two seeds are enough for a sample std and for Welch's test (the guards say < 2, not < 3: mutmut's
    survivors, docs/mutants.md). By hand: a = 1, 2 (mean 1.5, var 0.5), b = 4, 5, 6 (mean 5, var 1):
    se^2 = 0.5/2 + 1/3, t = -3.5 / se, Welch-Satterthwaite df = se^4 / ((0.5/2)^2/1 + (1/3)^2/2)."""
    from scipy.stats import t as student_t

    from frozen_glue.measures import stats

    assert stats.mean_std([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2.0)), 2)
    se2 = 0.5 / 2 + 1 / 3
    df = se2 ** 2 / ((0.5 / 2) ** 2 / 1 + (1 / 3) ** 2 / 2)
    p = 2 * student_t.cdf(-3.5 / np.sqrt(se2), df)
    assert round(p, 4) == 0.0213
    assert stats.welch_p([1, 2], [4, 5, 6]) == pytest.approx(p)
    assert stats.welch_p([4, 5, 6], [1, 2]) == pytest.approx(p)
    assert np.isnan(stats.welch_p([1], [4, 5, 6])) and np.isnan(stats.welch_p([1, 2], [4]))

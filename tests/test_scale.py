"""Scale-out: sharded extraction under torchrun, a base split by --device_map, the parallel sweep and its locks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TRAIN, results
from safetensors.torch import load_file

from frozen_glue import cache as feature_cache

# one thread per process: the 1-process run and each rank then compute every batch the same way, bit for bit
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def study_args(assets, out, cache, *extra):
    return [str(a) for a in ("--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir",
                             assets["glue_dir"], "--output_dir", out, *TRAIN, "--seeds", "1", "2", "--probe_layers",
                             "all", "--extraction_batch_size", "8", "--feature_cache", cache, *extra)]


def launch(args, ranks=1, port=29671):
    command = [sys.executable, str(ROOT / "run_glue_frozen.py")]
    if ranks > 1:
        command = [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", str(ranks), "--master_port",
                   str(port), *command[1:]]
    proc = subprocess.run(command + args, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def entries(cache):
    return {p.relative_to(cache): load_file(p)["features"] for p in sorted(Path(cache).rglob("*.safetensors"))}


def test_sharded_extraction_is_bit_identical_to_one_process(assets, tmp_path):
    """torchrun with 2 ranks over gloo: each rank runs half the batches, rank 0 assembles; the cache entries (every
    layer), the metrics and the predictions equal a 1-process run's exactly, and each run folder is written once."""
    launch(study_args(assets, tmp_path / "one", tmp_path / "c1"))
    log = launch(study_args(assets, tmp_path / "two", tmp_path / "c2"), ranks=2)
    assert "extraction sharded over 2 ranks" in log and log.count("run complete: ") == 2  # rank 0 alone writes
    one, two = entries(tmp_path / "c1"), entries(tmp_path / "c2")
    assert len(one) == 2 * 3 and list(one) == list(two)  # train + validation x 3 layers, the same keys
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert not [p for p in (tmp_path / "c2").rglob(".*") if p.is_file()]  # no part or temp file left
    for seed in (1, 2):
        a, b = (results(tmp_path / run / f"seed{seed}") for run in ("one", "two"))
        assert {k: v for k, v in a.items() if "runtime" not in k and "per_second" not in k} == \
               {k: v for k, v in b.items() if "runtime" not in k and "per_second" not in k}
        for name in ("predictions_validation.jsonl", "layer_results.json"):
            assert (tmp_path / "one" / f"seed{seed}" / name).read_bytes() == \
                   (tmp_path / "two" / f"seed{seed}" / name).read_bytes()
        config = json.loads((tmp_path / "two" / f"seed{seed}" / "config.json").read_text())
        assert config["extraction_ranks"] == 2 and config["global_batch_size"] == 16  # heads: one process


def test_a_dead_ranks_parts_are_never_an_entry_and_a_rerun_finishes(assets, tmp_path):
    """What a rank that died mid-extraction leaves (part files, no entry JSON) is not trusted: the cache has no
    entry for it, and rerunning rebuilds the entries exactly."""
    cache = tmp_path / "c"
    launch(study_args(assets, tmp_path / "ref", tmp_path / "ref-cache"))
    reference = entries(tmp_path / "ref-cache")
    # the state of a killed sharded run: rank 1's part of every entry written, nothing committed
    for path in reference:
        layer = json.loads((tmp_path / "ref-cache" / path).with_suffix(".json").read_text())["layer"]
        (cache / path).parent.mkdir(parents=True, exist_ok=True)
        feature_cache.part_path(cache / path, layer, 1, 2).write_bytes(b"half a part")
    meta = json.loads((tmp_path / "ref-cache" / next(iter(reference))).with_suffix(".json").read_text())
    assert feature_cache.load_entry(cache, meta["parts"]["model_fp"], "cola", "train", meta["key"]) is None
    launch(study_args(assets, tmp_path / "run", cache), ranks=2, port=29672)
    rebuilt = entries(cache)
    assert list(rebuilt) == list(reference) and all(torch.equal(rebuilt[k], reference[k]) for k in reference)
    assert not list(cache.rglob("*.part"))


def test_a_base_split_by_device_map_gives_the_plain_loads_features(script, assets, tmp_path, capsys):
    """--max_memory forces part of the model to the CPU and the rest to the disk (accelerate's offload): the same
    fingerprint, the same features bit for bit, the same predictions as the plain load."""
    from conftest import run

    common = ["--model_name_or_path", assets["comet"], "--tokenizer_name", assets["comet_tokenizer"], "--task_name",
              "sst2", "--glue_dir", assets["glue_dir"], *TRAIN, "--seeds", "1", "--probe_layers", "all"]
    assert run(script, capsys, *common, "--output_dir", tmp_path / "plain", "--feature_cache", tmp_path / "c1")[0] == 0
    code, out, err = run(script, capsys, *common, "--output_dir", tmp_path / "split", "--feature_cache",
                         tmp_path / "c2", "--device_map", "auto", "--max_memory", "cpu=140KB", "--offload_folder",
                         tmp_path / "offload")
    assert code == 0, err
    assert "the base is split by --device_map auto over cpu, disk" in out
    plain, split = entries(tmp_path / "c1"), entries(tmp_path / "c2")
    assert len(plain) == 6 and list(plain) == list(split)  # same fingerprint folder and keys
    assert all(torch.equal(plain[k], split[k]) for k in plain)
    assert (tmp_path / "plain" / "seed1" / "predictions_validation.jsonl").read_bytes() == \
           (tmp_path / "split" / "seed1" / "predictions_validation.jsonl").read_bytes()


@pytest.mark.parametrize("extra, message", [
    (["--device_map", "auto"], "--device_map splits the frozen base for the cached path's forward; add "
                               "--feature_cache DIR"),
    (["--device_map", "auto", "--feature_cache", "C", "--freeze_base", "false"],
     "--device_map needs the cached path, and the feature cache cannot serve this run: parts of the base train"),
    (["--max_memory", "cpu=1GB"], "--max_memory/--offload_folder place a split model: add --device_map auto"),
    (["--device_map", "auto", "--feature_cache", "C", "--max_memory", "lots"], "--max_memory lots: give DEVICE=AMOUNT"),
    (["--device_map", "everywhere", "--feature_cache", "C"], "--device_map everywhere: use auto, balanced"),
])
def test_device_map_misuse_is_one_line(script, assets, tmp_path, capsys, extra, message):
    from conftest import run

    extra = [str(tmp_path / "c") if e == "C" else e for e in extra]
    code, out, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir",
                         assets["glue_dir"], "--output_dir", tmp_path / "out", *TRAIN, *extra)
    assert code == 2 and err.startswith(f"error: {message}") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out" / "all_results.json").exists()

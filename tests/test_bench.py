"""The scale benches run end to end at small sizes (the figures themselves are bench numbers, not tested): the
thesis-size pipeline from the cache onward (--quick), the GPU extraction bench on the CPU, the XL-base bench on a
small model with a forced CPU + disk offload."""

import json
import os
import subprocess
import sys

from conftest import ROOT

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def bench(script, *args):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_bench_scale_quick_runs_the_pipeline_from_synthetic_cache_entries(tmp_path):
    out = bench("bench_scale.py", "--quick", "--json", tmp_path / "scale.json")
    # every run found its features in the cache, and trusted them by their stamps
    assert out.count("0 base forward batches, 0 bytes hashed (a warm rerun)") == 3, out
    assert "Targets:" in out and "T = 2 x [ c_layer N E S L" in out
    res = json.loads((tmp_path / "scale.json").read_text())
    verify = res["verify"]
    assert verify["full"]["bytes_read"] >= verify["entry_bytes"]  # hashing reads every byte
    assert verify["stamp"]["bytes_read"] < verify["entry_bytes"] / 5  # the stamp: JSON, stamp and header only
    assert res["grid"]["train_heads_calls"] and len(res["grid"]["train_heads_calls"]) == 2  # selection, final


def test_gpu_bench_runs_the_real_extraction_on_the_cpu(assets):
    out = bench("bench_cache.py", "--gpu", "--device", "cpu", "--layers", "2", "--hidden", "64", "--rows", "200",
                "--tokens_per_batch", "2048", "--base_dtype", "float32", "--glue_dir", assets["glue_dir"])
    assert "tokens/s" in out and "MFU" in out and "projected base forward of the thesis: GPU hours" in out, out


def test_base_bench_compares_dtypes_and_an_offloaded_base(assets, tmp_path):
    out = bench("bench_base.py", "--layers", "2", "--hidden", "64", "--rows", "32", "--cpu_memory", "100KB",
                "--glue_dir", assets["glue_dir"])
    assert "offload vs fp32: relative L2 per row mean 0.00e+00" in out, out  # offloading changes no number
    [offload] = [line for line in out.splitlines() if line.strip().startswith("offload ") and "fingerprint" in line]
    assert "base held in RAM 0.00 GB (split over disk)" in offload, offload  # --max_memory put it all on the disk
    assert "bf16 vs fp32: relative L2" in out

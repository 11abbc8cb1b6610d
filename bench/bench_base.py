#!/usr/bin/env python
"""The frozen base at GPT-2 XL's size on CPU: a GPT-2-XL-shaped model built from its config (48 blocks x 1600, random
weights, no download; a byte-level BPE of 50,257 tokens trained on the local GLUE text) is saved, then loaded,
fingerprinted and run over the first --rows real CoLA train rows through the real pipeline (prepare + the cached
path's extract_features), four ways, each in its own process (its own peak RSS):

  fp32           the base held in float32 (today's default)
  fp32+autocast  float32 weights, --bf16 (bfloat16 autocast, as extraction on a GPU runs)
  bf16           --base_dtype bfloat16: the base held in bfloat16 (half the memory)
  offload        --device_map auto --max_memory cpu=<--cpu_memory> --offload_folder: what does not fit the CPU budget
                 is offloaded to disk and read back every forward (accelerate's big-model inference)

and compares the features (relative L2 difference per row) of the others against fp32's and bf16's against
fp32+autocast's.

    python bench/bench_base.py [--glue_dir ../shared/data/glue] [--rows 256]
    python bench/bench_base.py --layers 2 --hidden 128      # a small model of the same code path (seconds)
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from frozen_glue.core.errors import ArgumentParser, UserError, run_cli  # noqa: E402

from bench_cache import AnonPeak  # noqa: E402
from bench_models import build_gpt2  # noqa: E402

MODES = {"fp32": [], "fp32+autocast": ["--bf16", "true"], "bf16": ["--base_dtype", "bfloat16"],
         "offload": ["--device_map", "auto"]}


def measure(args):
    """In the child: prepare (load + fingerprint) and extract, timed around the pipeline's own functions."""
    from frozen_glue.config.arguments import parse_args
    from frozen_glue.model import fingerprinting, loading
    from frozen_glue.model.pooling import num_layers
    from frozen_glue.run import runners
    from frozen_glue.run.prepare import prepare

    work, timings = Path(args.work), {}
    for module, name in ((loading, "load_model"), (fingerprinting, "model_fingerprint")):
        original = getattr(module, name)

        def timed(*a, original=original, name=name, **k):
            started = time.time()
            try:
                return original(*a, **k)
            finally:
                timings[name] = time.time() - started

        setattr(module, name, timed)
    extra = list(MODES[args.measure])
    if args.measure == "offload":
        extra += ["--max_memory", f"cpu={args.cpu_memory}", "--offload_folder", str(work / "offload")]
    argv = ["--model_name_or_path", str(work / "model"), "--task_name", "cola", "--glue_dir", str(args.glue_dir),
            "--output_dir", str(work / "out" / args.measure), "--do_train", "--max_train_samples", str(args.rows),
            "--feature_cache", str(work / f"cache-{args.measure}"), "--extraction_batch_size", "64",
            "--use_cpu", "true", "--disable_tqdm", "true", "--report_to", "none", *extra]
    started = time.time()
    prep = prepare(*parse_args(argv))
    timings["prepare"] = time.time() - started
    after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    resident = {k: int(status[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon")}  # now, not the loading peak
    started = time.time()
    runners.extract_features(prep, [num_layers(prep.config)])
    timings["extract"] = time.time() - started
    base = prep.model.base_model
    held = sum(p.numel() * p.element_size() for p in base.parameters() if p.device.type != "meta")
    return {"timings": timings, "peak_rss_after_load_mb": after_load, "resident_after_load_mb": resident,
            "tokens": sum(map(len, prep.tokenized["train"]["input_ids"])), "base_bytes_held_in_ram": held,
            "params": sum(p.numel() for p in base.parameters()),
            "placement": sorted(set(map(str, getattr(prep.model, "hf_device_map", {}).values())))}


def child(args):
    with AnonPeak() as anon:
        result = measure(args)
    usage = resource.getrusage(resource.RUSAGE_SELF)  # CPU seconds: on a shared machine wall time overstates
    result.update(peak_rss_mb=usage.ru_maxrss / 1024, peak_anon_mb=anon.peak, cpu_s=usage.ru_utime + usage.ru_stime)
    print("BENCH " + json.dumps(result), flush=True)


def run_child(mode, args, work):
    cmd = [sys.executable, __file__, "--measure", mode, "--work", str(work), "--glue_dir", str(args.glue_dir),
           "--rows", str(args.rows), "--cpu_memory", args.cpu_memory]
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"bench_base: {mode} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return {**json.loads(lines[-1][6:]), "wall_s": time.time() - started}


def features(work, mode):
    from frozen_glue.features import cache

    [path] = (work / f"cache-{mode}").rglob("train-*.safetensors")
    return cache.read_features(path).float().clone()


def difference(a, b) -> str:
    """Relative L2 difference per row of a against b: mean and max; and the smallest cosine."""
    import torch

    rel = (a - b).norm(dim=1) / b.norm(dim=1)
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1)
    return f"relative L2 per row mean {rel.mean():.2e}, max {rel.max():.2e}; cosine min {cos.min():.6f}"


def bench(argv):
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "data" / "glue"))
    ap.add_argument("--rows", type=int, default=256, help="real CoLA train rows extracted")
    ap.add_argument("--layers", type=int, default=48, help="blocks of the model built (GPT-2 XL: 48)")
    ap.add_argument("--hidden", type=int, default=1600, help="its width (GPT-2 XL: 1600)")
    ap.add_argument("--cpu_memory", default="2GiB", help="--max_memory cpu= of the offload run (the rest: disk)")
    ap.add_argument("--work", help="keep the work folder here (default: a temp folder, removed)")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not (Path(args.glue_dir) / "CoLA" / "train.tsv").exists():
        raise UserError(f"no CoLA under {args.glue_dir}; pass --glue_dir with the original GLUE data")
    if args.measure:
        return child(args)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        return report(Path(tmp), args)


def report(work, args):
    started = time.time()
    build_gpt2(work / "model", args.glue_dir, layers=args.layers, hidden=args.hidden)
    weights = sum(p.stat().st_size for p in (work / "model").glob("*.safetensors"))
    print(f"base: GPT-2 of {args.layers} x {args.hidden} from its config (random weights), {weights / 1e9:.2f} GB of "
          f"float32 weights on disk, built and saved in {time.time() - started:.0f} s; {args.rows} real CoLA rows, "
          f"length-sorted batches of 64", flush=True)
    res = {}
    for mode in MODES:
        r = res[mode] = run_child(mode, args, work)
        t = r["timings"]
        split = f" (split over {', '.join(r['placement'])})" if r["placement"] else ""
        print(f"  {mode:<14} load {t['load_model']:5.1f} s, fingerprint {t['model_fingerprint']:5.1f} s, extract "
              f"{t['extract']:6.1f} s ({r['tokens'] / t['extract']:.0f} tokens/s); peak RSS "
              f"{r['peak_rss_mb'] / 1024:5.2f} GB ({r['peak_rss_mb'] * 2**20 / weights:.2f}x the float32 weights; "
              f"anonymous {r['peak_anon_mb'] / 1024:.2f} GB), {r['cpu_s']:.0f} s CPU, base held in RAM "
              f"{r['base_bytes_held_in_ram'] / 1e9:.2f} GB{split}"
              f"; resident once loaded {r['resident_after_load_mb']['VmRSS'] / 1024:.2f} GB (anonymous "
              f"{r['resident_after_load_mb']['RssAnon'] / 1024:.2f} GB)", flush=True)
    fp32 = features(work, "fp32")
    print("feature differences (the top layer's pooled features):")
    for mode, against in (("fp32+autocast", "fp32"), ("bf16", "fp32"), ("bf16", "fp32+autocast"),
                          ("offload", "fp32")):
        print(f"  {mode} vs {against}: {difference(features(work, mode), features(work, against))}")
    bf16 = res["bf16"]
    print(f"target: the XL-shaped base in bf16 resident {bf16['resident_after_load_mb']['VmRSS'] / 1024:.2f} GB once "
          f"loaded, {bf16['peak_rss_mb'] / 1024:.2f} GB peak (<= 3.5 GB); "
          f"fp32 {res['fp32']['peak_rss_mb'] / 1024:.2f} GB; offload {res['offload']['peak_rss_mb'] / 1024:.2f} GB; "
          f"whole bench {time.time() - started:.0f} s")
    return fp32.shape[0] and None


def main(argv=None):
    return run_cli(bench, argv)


if __name__ == "__main__":
    sys.exit(main())

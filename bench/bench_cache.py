#!/usr/bin/env python
"""Benchmark: Trainer path vs cached path on real CoLA, thesis protocol (5 seeds x 3 epochs).

    python bench/bench_cache.py [--glue_dir ../shared/data/glue] [--models gpt2-6x512 minilm]
    python bench/bench_cache.py --gpu          # GPT-2-XL-shaped model on a CUDA GPU: the real cache.extract over
                                               # --rows real GLUE rows, --tokens_per_batch (bench/gpu_extract.py)
    python bench/bench_cache.py --gpu --device cpu --layers 2 --hidden 128 --rows 500   # smoke run, seconds
    python bench/bench_cache.py --probes       # what layer-wise probes and a head grid cost (real MiniLM)

Prints, per model: (1) Trainer path, pad-to-128 vs dynamic padding; (2) Trainer path (dynamic) vs cached path;
(3) cached path vs one bare no-grad forward over train+dev (the floor); (4) peak RSS of each.

The cached path and the floor run in full. The two Trainer paths cost hours on a 2-core CPU, so they run one
seed, one epoch, on the first --trainer_rows train rows (and --eval_rows dev rows), and their time is projected
linearly to the protocol: per-row train time x 8551 rows x 3 epochs x 5 seeds + per-row eval time x 1043 x 5.
(Each training step costs the same whatever the seed, so the projection is linear in rows.) Every measurement
runs in its own process, so its peak RSS is its own.

--probes: three full cached runs of real MiniLM on real CoLA (5 seeds x 3 epochs, each from an empty feature cache,
as a user's first run of a model x task): the top layer only, all 7 layers (--probe_layers all), and a 3 x 2 head
grid (--head_learning_rates 1e-4 1e-3 1e-2 --head_weight_decays 0 0.01). Prints their wall-time and peak-RSS ratios.
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

from bench_models import build_gpt2, minilm_dir  # noqa: E402

SEEDS, EPOCHS = 5, 3
COLA_TRAIN, COLA_DEV = 8551, 1043


def script_args(model, glue_dir, out, *extra):
    return ["--model_name_or_path", str(model), "--task_name", "cola", "--glue_dir", str(glue_dir),
            "--output_dir", str(out), "--do_train", "--do_eval", "--num_train_epochs", str(EPOCHS),
            "--disable_tqdm", "true", "--use_cpu", "true", "--report_to", "none", *map(str, extra)]


def measure(kind, model, glue_dir, work, trainer_rows, eval_rows):
    """Runs in a child process; returns a dict with wall seconds and details."""
    import torch

    from frozen_glue.config.arguments import parse_args
    from frozen_glue.run.prepare import prepare
    from frozen_glue.run.run import main
    out = Path(work) / kind
    if kind == "floor":
        from frozen_glue.features import cache
        from frozen_glue.model.pooling import num_layers

        study = prepare(*parse_args(script_args(model, glue_dir, out)))
        top = num_layers(study.config)
        started = time.time()
        rows = 0
        for split in ("train", "validation"):
            ds = study.tokenized[split]
            writer = cache.EntryWriter(Path(work) / f"floor-{split}.safetensors", len(ds), study.config.hidden_size,
                                       torch.float32)
            plan = cache.batches([len(ids) for ids in ds["input_ids"]], 64)
            cache.extract(study.model, ds, study.collator, study.pooling_rule, plan, torch.device("cpu"),
                          {top: writer}, top)
            writer.discard()
            rows += len(ds)
        tokens = sum(len(x) for s in ("train", "validation") for x in study.tokenized[s]["input_ids"])
        return {"wall": time.time() - started, "rows": rows, "tokens": tokens}
    if kind in ("cached", "last", "layers", "grid", "mdl", "control"):
        extra = {"layers": ["--probe_layers", "all"], "grid": ["--head_learning_rates", "1e-4", "1e-3", "1e-2",
                                                               "--head_weight_decays", "0", "0.01"],
                 # bench/bench_information.py: the all-layer probe with MDL or selectivity on top
                 "mdl": ["--probe_layers", "all", "--probe_mdl"],
                 "control": ["--probe_layers", "all", "--probe_control"]}.get(kind, [])
        started = time.time()
        code = main(script_args(model, glue_dir, out, "--seeds", *range(1, SEEDS + 1), "--feature_cache",
                                       Path(work) / f"cache-{kind}", *extra))
        assert code == 0
        return {"wall": time.time() - started}
    # trainer paths: one seed, one epoch on a subset, timed by the Trainer's own runtimes, then projected
    pad = ["--pad_to_max_length", "true"] if kind == "trainer_pad128" else []
    started = time.time()
    code = main(script_args(model, glue_dir, out, "--num_train_epochs", 1, "--max_train_samples", trainer_rows,
                                   "--max_eval_samples", eval_rows, *pad))
    assert code == 0
    r = json.loads((out / "all_results.json").read_text())
    per_train_row, per_eval_row = r["train_runtime"] / trainer_rows, r["eval_runtime"] / eval_rows
    projected = SEEDS * (per_train_row * COLA_TRAIN * EPOCHS + per_eval_row * COLA_DEV)
    return {"wall": projected, "measured_wall": time.time() - started, "train_runtime": r["train_runtime"],
            "eval_runtime": r["eval_runtime"], "projected": True}


class AnonPeak:
    """Peak anonymous RSS (RssAnon of /proc/self/status, sampled every 10 ms): the memory a process must hold.
    ru_maxrss also counts the pages of memory-mapped cache files, which the kernel can drop and reread."""

    def __enter__(self):
        import threading

        self.peak, self.done = 0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.done.wait(0.01):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    self.peak = max(self.peak, int(line.split()[1]) / 1024)

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def child(args):
    with AnonPeak() as anon:
        result = measure(args.measure, args.model_path, args.glue_dir, args.work, args.trainer_rows, args.eval_rows)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["peak_anon_mb"] = anon.peak
    print("BENCH " + json.dumps(result), flush=True)


def run_child(kind, model_path, args, work):
    cmd = [sys.executable, __file__, "--measure", kind, "--model_path", str(model_path), "--glue_dir",
           str(args.glue_dir), "--work", str(work), "--trainer_rows", str(args.trainer_rows), "--eval_rows",
           str(args.eval_rows)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"benchmark step {kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][6:])


def start(args):
    """The real CoLA folder (a UserError without it), after printing the machine line."""
    import torch

    glue = Path(args.glue_dir)
    if not (glue / "CoLA" / "train.tsv").exists():
        raise UserError(f"no CoLA under {glue}; pass --glue_dir with the original GLUE data")
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    return glue


def cpu_bench(args):
    glue = start(args)
    print(f"protocol: CoLA train {COLA_TRAIN} / dev {COLA_DEV}, {SEEDS} seeds x {EPOCHS} epochs, batch 8, "
          f"lr 5e-5 (Trainer defaults)\n")
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        if "gpt2-6x512" in args.models:
            models["gpt2-6x512"] = build_gpt2(Path(tmp) / "gpt2-6x512", glue)
        if "minilm" in args.models:
            models["minilm"] = minilm_dir()
        for name, path in models.items():
            res = {kind: run_child(kind, path, args, Path(tmp) / name)
                   for kind in ("floor", "cached", "trainer_dynamic", "trainer_pad128")}
            f, c, d, p = (res[k]["wall"] for k in ("floor", "cached", "trainer_dynamic", "trainer_pad128"))
            print(f"== {name} ({path.name}); floor: {res['floor']['rows']} rows, {res['floor']['tokens']} tokens")
            print(f"1. Trainer path, pad-to-128 {p:9.0f} s* vs dynamic padding {d:9.0f} s*  -> {p / d:5.1f}x "
                  f"(target >= 3x)")
            print(f"2. Trainer path (dynamic)   {d:9.0f} s* vs cached path     {c:9.1f} s   -> {d / c:5.1f}x "
                  f"(target >= 10x)")
            print(f"3. cached path              {c:9.1f} s  vs bare forward     {f:9.1f} s   -> {c / f:5.2f}x "
                  f"(target <= 1.25x)")
            print("4. peak RSS (MB): " + ", ".join(f"{k} {v['peak_rss_mb']:.0f}" for k, v in res.items()))
            print(f"   * projected from one seed x one epoch on {args.trainer_rows} train / {args.eval_rows} dev rows "
                  f"(measured {res['trainer_dynamic']['measured_wall']:.0f} s and "
                  f"{res['trainer_pad128']['measured_wall']:.0f} s wall incl. loading)\n", flush=True)


def probes_bench(args):
    start(args)
    print(f"protocol: real all-MiniLM-L6-v2 (6 layers + embeddings) on real CoLA, train {COLA_TRAIN} / dev "
          f"{COLA_DEV}, {SEEDS} seeds x {EPOCHS} epochs, each run from an empty feature cache\n")
    with tempfile.TemporaryDirectory() as tmp:
        res = {kind: run_child(kind, minilm_dir(), args, Path(tmp)) for kind in ("last", "layers", "grid")}
    last, layers, grid = (res[k]["wall"] for k in ("last", "layers", "grid"))
    rss = {k: v["peak_rss_mb"] for k, v in res.items()}
    anon = {k: v["peak_anon_mb"] for k, v in res.items()}
    print(f"1. all 7 layers probed      {layers:7.1f} s vs top layer only {last:7.1f} s -> {layers / last:4.2f}x "
          f"(target <= 1.3x)")
    print(f"2. 3 x 2 head grid x 5 seeds {grid:6.1f} s vs one setting     {last:7.1f} s -> {grid / last:4.2f}x "
          f"(target <= 1.5x)")
    print(f"3. peak anonymous RSS, all layers {anon['layers']:.0f} MB vs top layer only {anon['last']:.0f} MB -> "
          f"{anon['layers'] / anon['last']:4.2f}x (target <= 1.2x; grid: {anon['grid']:.0f} MB)")
    print(f"   peak RSS incl. mapped cache pages: {rss['layers']:.0f} MB vs {rss['last']:.0f} MB -> "
          f"{rss['layers'] / rss['last']:4.2f}x (the cache files' pages: page cache the kernel may drop)", flush=True)


def gpu_bench(args):
    """The real extraction of a GPT-2-XL-shaped model over real GLUE rows (bench/gpu_extract.py)."""
    import gpu_extract

    start(args)
    with tempfile.TemporaryDirectory() as tmp:
        gpu_extract.run(argparse.Namespace(**{**vars(args), "work": tmp}))


def main(argv=None):
    return run_cli(bench, argv)


def bench(argv):
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "data" / "glue"))
    ap.add_argument("--models", nargs="+", default=["gpt2-6x512", "minilm"], choices=["gpt2-6x512", "minilm"])
    ap.add_argument("--trainer_rows", type=int, default=1000, help="train rows timed for the Trainer paths")
    ap.add_argument("--eval_rows", type=int, default=300, help="dev rows timed for the Trainer paths")
    ap.add_argument("--gpu", action="store_true", help="GPT-2-XL-shaped extraction benchmark on a CUDA GPU")
    ap.add_argument("--probes", action="store_true", help="cost of --probe_layers all and of a head grid")
    ap.add_argument("--peak_tflops", type=float, default=989.0, help="the GPU's dense bf16 peak (H100 SXM: 989)")
    ap.add_argument("--device", default="cuda", help="--gpu's device; cpu for a smoke run with --layers 2 --hidden 128")
    ap.add_argument("--layers", type=int, default=48, help="--gpu: blocks of the model (GPT-2 XL: 48)")
    ap.add_argument("--hidden", type=int, default=1600, help="--gpu: its width (GPT-2 XL: 1600)")
    ap.add_argument("--rows", type=int, default=20000, help="--gpu: real GLUE train rows extracted")
    ap.add_argument("--tokens_per_batch", type=int, default=65536, help="--gpu: --extraction_tokens_per_batch")
    ap.add_argument("--base_dtype", default="bfloat16", choices=["bfloat16", "float32"], help="--gpu: the base held in")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--model_path", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        return child(args)
    return gpu_bench(args) if args.gpu else probes_bench(args) if args.probes else cpu_bench(args)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Benchmark: do the heads of `make cola` / `make all` reach what the frozen features hold, and does a first study
find a real difference? (issue 30)

    python bench/bench_heads.py [--glue_dir ../shared/data/glue] [--out DIR] [--tasks cola sst2 mrpc rte]

Real all-MiniLM-L6-v2 against a noised copy of itself (every encoder weight matrix plus Gaussian noise of 0.3 x its
std, seed 0; its sentence-transformers files copied beside it, as `cp -r` then editing the weights would leave
them), on the README's default path: the sweep (launch/all_tasks.sh) with the Makefile's TRAIN_ARGS, every layer
probed, 3 seeds, 2000 train rows where a task has them, full dev sets, two groups at once; then summarize.
Prints, from the run folders: per task, MiniLM's head (mean of the seeds) against the convex probe on the same
features at the top layer and the lowest layer score from layer 1 up; and each task's verdict, difference and
interval from the report. Acceptance (issue 30): head >= convex - 0.03 on SST-2 and MRPC, - 0.05 on CoLA; SST-2
>= 0.60 at every layer from 1 up. Exit 1 when one fails.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from frozen_glue.core.errors import ArgumentParser, run_cli

from bench_cache import ROOT
from bench_models import minilm_dir

SLACK = {"sst2": 0.03, "mrpc": 0.03, "cola": 0.05}


def train_args() -> list:
    """The Makefile's TRAIN_ARGS (its one place), continuation lines joined."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return re.search(r"^TRAIN_ARGS \?=(.*)$", text, re.M).group(1).split()


def noised_copy(out: Path, scale=0.3, seed=0) -> Path:
    import torch
    from transformers import AutoModel, AutoTokenizer

    source = minilm_dir()
    model = AutoModel.from_pretrained(source)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("encoder.") and p.dim() == 2:
                p.add_(torch.randn(p.shape, generator=gen) * scale * p.std())
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    for extra in ("modules.json", "1_Pooling"):  # read by the same pooling as the original (--pooling auto)
        (shutil.copytree if (source / extra).is_dir() else shutil.copy)(source / extra, out / extra)
    return out


def main(argv=None):
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "data" / "glue"), help="GLUE .tsv folder")
    ap.add_argument("--out", default="bench_heads", help="where the models, runs and report go")
    ap.add_argument("--tasks", nargs="+", default=["cola", "sst2", "mrpc", "rte"], help="GLUE tasks")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    noised = out / "models" / "minilm-noised"
    if not noised.exists():
        noised_copy(noised)
    models = out / "models.tsv"
    models.write_text(f"minilm\t{minilm_dir()}\t-\t\t-\t-\nminilm-noised\t{noised}\t-\t\t-\tminilm\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MODELS": str(models), "TASKS": " ".join(args.tasks),
           "SEEDS": "1 2 3", "RUNS": str(out / "runs"), "GLUE_DIR": args.glue_dir, "JOBS": "2",
           "FEATURE_CACHE": str(out / "cache"), "PYTHON": sys.executable}
    flags = [*train_args(), "--max_train_samples", "2000", "--probe_layers", "all", "--disable_tqdm", "true"]
    subprocess.run(["bash", str(ROOT / "launch" / "all_tasks.sh"), *flags], env=env, check=True)
    subprocess.run([sys.executable, str(ROOT / "analysis" / "summarize.py"), "--runs", str(out / "runs"), "--out",
                    str(out / "reports"), "--models", str(models), "--feature_cache", str(out / "cache")],
                   env=env, check=True)
    failed = []
    print("\ntask  metric  top layer: head (3-seed mean) vs convex probe | lowest head score from layer 1 up")
    for task in args.tasks:
        folders = sorted((out / "runs" / "minilm" / task).glob("seed*"))
        cells = [json.loads((f / "convex.json").read_text()) for f in folders]
        layers = sorted(cells[0]["layers"], key=int)
        head = {la: float(np.mean([c["layers"][la]["head"] for c in cells])) for la in layers}
        convex = cells[0]["layers"][layers[-1]]["convex"]
        low = min(head[la] for la in layers[1:])
        print(f"{task:5} {cells[0]['metric']:22} {head[layers[-1]]:.3f} vs {convex:.3f} | {low:.3f}")
        if task in SLACK and head[layers[-1]] < convex - SLACK[task]:
            failed.append(f"{task}: head {head[layers[-1]]:.3f} < convex {convex:.3f} - {SLACK[task]}")
        if task == "sst2" and low < 0.60:
            failed.append(f"sst2: a layer from 1 up scores {low:.3f} < 0.60")
    verdicts = (out / "reports" / "disagreements.csv")
    if verdicts.exists():
        import pandas as pd

        table = pd.read_csv(verdicts)
        print("\nverdicts (minilm vs minilm-noised):")
        for _, r in table.iterrows():
            print(f"  {r['task']}: {r['verdict']}, difference {r['difference']:+.3f}, {r['ci_level']:.2%} CI "
                  f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}], Holm p {r['p_holm']:.3g}")
    print("\n" + ("acceptance: all met" if not failed else "acceptance FAILED: " + "; ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

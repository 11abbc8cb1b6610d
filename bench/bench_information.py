#!/usr/bin/env python
"""Benchmark: what --probe_mdl and --probe_control cost on top of the plain all-layer probe (issue 23).

    python bench/bench_information.py [--glue_dir ../shared/data/glue]

Three full cached runs of the real all-MiniLM-L6-v2 on real CoLA (5 seeds x 3 epochs, every layer probed, each
from an empty feature cache, as a user's first run of a model x task), each in its own process: the plain
all-layer probe, the same with --probe_mdl (10 prefix heads per layer x seed, stacked per prefix), and the same
with --probe_control (a second set of layer x seed heads on control labels). Prints the wall-time ratios; the
MDL target is <= 2x. PVI and the expected layer cost nothing measurable (a log-softmax per evaluated example; a
weighted mean of the layer curve in the report).
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cache import COLA_DEV, COLA_TRAIN, EPOCHS, ROOT, SEEDS, minilm_dir, run_child, start  # noqa: E402

from frozen_glue.errors import ArgumentParser, run_cli  # noqa: E402


def bench(argv):
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "data" / "glue"))
    args = ap.parse_args(argv)
    args.trainer_rows, args.eval_rows = 0, 0  # run_child passes them on; the cached kinds ignore them
    start(args)
    print(f"protocol: real all-MiniLM-L6-v2 (6 layers + embeddings) on real CoLA, train {COLA_TRAIN} / dev "
          f"{COLA_DEV}, {SEEDS} seeds x {EPOCHS} epochs, every layer probed, each run from an empty feature cache\n")
    with tempfile.TemporaryDirectory() as tmp:
        wall = {kind: run_child(kind, minilm_dir(), args, Path(tmp))["wall"] for kind in ("layers", "mdl", "control")}
    layers, mdl, control = wall["layers"], wall["mdl"], wall["control"]
    print(f"1. --probe_mdl, 5 seeds x 7 layers     {mdl:7.1f} s vs all-layer probe {layers:7.1f} s -> "
          f"{mdl / layers:4.2f}x (target <= 2x; MDL itself {mdl - layers:+.1f} s)")
    print(f"2. --probe_control, 5 seeds x 7 layers {control:7.1f} s vs all-layer probe {layers:7.1f} s -> "
          f"{control / layers:4.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(bench, sys.argv[1:]))

#!/usr/bin/env python
"""Benchmark: what --probe_mdl and --probe_control cost on top of the plain all-layer probe (issue 23).

    python bench/bench_information.py [--glue_dir ../shared/data/glue] [--full]

Default: one process on real all-MiniLM-L6-v2 and real CoLA (5 seeds x 3 epochs, every layer probed, an empty
feature cache): the model load and extraction and the plain all-layer heads (a cold all-layer run), then the MDL
heads and the control heads on the same features, each timed; prints what each adds to the cold run.
--full: three full cached runs of the real all-MiniLM-L6-v2 on real CoLA (5 seeds x 3 epochs, every layer probed, each
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

from frozen_glue.core.errors import ArgumentParser, run_cli

from bench_cache import COLA_DEV, COLA_TRAIN, EPOCHS, ROOT, SEEDS, run_child, script_args, start
from bench_models import minilm_dir


def in_process(args):
    """One process, one feature extraction: the load + extraction + plain all-layer head training of a cold run,
    then the MDL and control heads on the same features, each timed (a loaded shared machine slows every part
    alike, so the ratios hold where three separate runs would each see other load)."""
    import time

    from frozen_glue.config import arguments
    from frozen_glue.run import runners
    from frozen_glue.run.prepare import prepare
    from frozen_glue.science import information_probes
    from frozen_glue.training import cached_head

    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        prep = prepare(*arguments.parse_args(script_args(
            minilm_dir(), args.glue_dir, Path(tmp) / "run", "--seeds", *range(1, SEEDS + 1), "--feature_cache",
            Path(tmp) / "cache", "--probe_layers", "all", "--probe_mdl", "--probe_control")))
        layers = runners.probed_layers(prep)
        features = runners.extract_features(prep, layers)
        data = {layer: {s: cached_head.FeatureDataset(features[s][layer], list(prep.raw[s]["label"]), False)
                        for s in ("train", "validation")} for layer in layers}
        wall, trainers = {"load + extraction": time.time() - started}, None
        for name, step in (("plain all-layer heads", lambda: runners.train_stacked(prep, layers, data)[0]),
                           ("MDL heads", lambda: information_probes.mdl(prep, layers, data)),
                           ("control heads", lambda: information_probes.selectivity(prep, layers, data, trainers))):
            started = time.time()
            out = step()
            if name.startswith("plain"):  # the control heads reuse the plain heads' trainers
                trainers = out
            wall[name] = time.time() - started
    plain = wall["load + extraction"] + wall["plain all-layer heads"]
    print("  ".join(f"{k} {v:.1f} s" for k, v in wall.items()))
    print(f"1. --probe_mdl, 5 seeds x 7 layers: run {plain + wall['MDL heads']:7.1f} s vs all-layer probe "
          f"{plain:7.1f} s -> {(plain + wall['MDL heads']) / plain:4.2f}x (target <= 2x); MDL heads vs the plain "
          f"heads: {wall['MDL heads'] / wall['plain all-layer heads']:4.2f}x")
    print(f"2. --probe_control: run {plain + wall['control heads']:7.1f} s vs all-layer probe {plain:7.1f} s -> "
          f"{(plain + wall['control heads']) / plain:4.2f}x", flush=True)
    return 0


def bench(argv):
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "data" / "glue"))
    ap.add_argument("--full", action="store_true", help="three separate full runs instead of one process")
    args = ap.parse_args(argv)
    args.trainer_rows, args.eval_rows = 0, 0  # run_child passes them on; the cached kinds ignore them
    start(args)
    if not args.full:
        return in_process(args)
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

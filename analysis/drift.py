#!/usr/bin/env python
"""Representation drift from a base model to its specialized descendant: debiased linear CKA between the two
models' cached features of the same validation rows, layer by layer (1 = the same representation up to rotation
and scale). Writes drift_<task>.csv and fig_drift_<task>.png.

    python analysis/drift.py --feature_cache .cache/features --task cola --models gpt2-xl comet-distil
    python analysis/drift.py --feature_cache .cache/features --task cola   # every base pair of the models file

Models are aliases of the models file (its 6th column declares each model's base), model names as given to
--model_name_or_path, or fingerprint folders of the cache. The features come from runs with --probe_layers.
"""

import argparse
import io
import sys
from pathlib import Path

import pandas as pd

from frozen_glue import drift, figures, layout, sweep
from frozen_glue.errors import ArgumentParser, UserError, run_cli
from frozen_glue.tasks import get_task


def parse(argv):
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feature_cache", required=True, help="the feature cache dir the runs used")
    ap.add_argument("--task", required=True, help="GLUE task, e.g. cola")
    ap.add_argument("--models", nargs=2, metavar=("BASE", "DERIVED"),
                    help="the two models (default: every model of --models_file with a base, against its base)")
    ap.add_argument("--models_file", default="launch/models.tsv", help="models file (aliases and the base column)")
    ap.add_argument("--out", default="reports", help="output dir")
    return ap.parse_args(argv)


def run(args):
    task = get_task(args.task)
    if not Path(args.feature_cache).is_dir():
        raise UserError(f"--feature_cache {args.feature_cache} does not exist; give the dir your runs cached into")
    known = {m.alias: m for m in sweep.read_models(args.models_file)} if Path(args.models_file).is_file() else {}
    if args.models:
        pairs = [tuple(known.get(name, name) for name in args.models)]
    else:
        pairs = [(known[m.base], m) for m in known.values() if m.base]
        if not pairs:
            raise UserError(f"{args.models_file} declares no base (6th column); pass --models BASE DERIVED")
    table = pd.concat([drift.layer_drift(args.feature_cache, task.name, a, b) for a, b in pairs], ignore_index=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    layout.atomic_write_bytes(out / f"drift_{task.name}.csv", table.to_csv(index=False).encode())
    buffer = io.BytesIO()
    fig = figures.drift_figure(table, task.name)
    fig.savefig(buffer, format="png", dpi=figures.DPI)
    figures.plt.close(fig)
    layout.atomic_write_bytes(out / f"fig_drift_{task.name}.png", buffer.getvalue())
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"written: {out / f'drift_{task.name}.csv'}, {out / f'fig_drift_{task.name}.png'}")
    return 0


def main(argv=None):
    return run_cli(lambda a: run(parse(a)), argv)


if __name__ == "__main__":
    sys.exit(main())

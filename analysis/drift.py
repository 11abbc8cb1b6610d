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
import sys

from frozen_glue.core.errors import ArgumentParser, run_cli
from frozen_glue.report.pair_report import drift_report


def parse(argv):
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feature_cache", required=True, help="the feature cache dir the runs used")
    ap.add_argument("--task", required=True, help="GLUE task, e.g. cola")
    ap.add_argument("--models", nargs=2, metavar=("BASE", "DERIVED"),
                    help="the two models (default: every model of --models_file with a base, against its base)")
    ap.add_argument("--models_file", default="launch/models.tsv", help="models file (aliases and the base column)")
    ap.add_argument("--out", default="reports", help="output dir")
    return ap.parse_args(argv)


def main(argv=None):
    return run_cli(lambda a: drift_report(parse(a)), argv)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Where two models disagree on one task, example by example, and whether it is more than noise.

    python analysis/disagreements.py --task cola --models gpt2-xl comet-distil [--seed 1]

Prints both right / only A right / only B right / both wrong, the exact McNemar p on the discordant pairs, and
a paired bootstrap 95% CI of the main-metric difference; writes <out>/disagreements_<task>.tsv (texts, gold,
both predictions and probabilities) and <out>/slices_<task>.csv.
"""

import argparse
import sys

from frozen_glue.core.errors import ArgumentParser, run_cli
from frozen_glue.report.pair_report import disagreements


def main(argv=None):
    return run_cli(lambda a: disagreements(parse(a)), argv)


def parse(argv):
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, help="GLUE task name")
    ap.add_argument("--models", nargs=2, required=True, metavar=("A", "B"), help="two model aliases under --runs")
    ap.add_argument("--runs", default="runs", help="runs root")
    ap.add_argument("--out", default="reports", help="where the .tsv/.csv go")
    ap.add_argument("--seed", type=int, help="compare this seed's runs (default: all seeds, majority vote)")
    ap.add_argument("--split", help="validation split (MNLI: validation_matched or validation_mismatched)")
    ap.add_argument("--slice", action="append", default=[], metavar="NAME=REGEX", help="extra slice; repeatable")
    ap.add_argument("--n_resamples", type=int, default=2000, help="bootstrap resamples")
    return ap.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())

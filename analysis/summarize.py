#!/usr/bin/env python
"""Summarize a run tree into reports/: mean ± std tables (md, csv, tex), figures, disagreements, slices,
significance, a comparison with published numbers, and report.md tying them together.

    python analysis/summarize.py [--runs runs/] [--out reports/] [--reference analysis/thesis_reference.csv]

Reads complete runs only (warns about the others) and never writes into the runs dir.
"""

import argparse
import sys

from frozen_glue.core.errors import ArgumentParser, run_cli
from frozen_glue.report.report import summarize


def main(argv=None):
    return run_cli(lambda a: summarize(parse(a)), argv)


def parse(argv):
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs", help="runs root (runs/<model>/<task>/seed<N>/)")
    ap.add_argument("--out", default="reports", help="output dir for tables, figures and report.md")
    ap.add_argument("--reference", help="csv of published numbers: model,task,metric,mean,std")
    ap.add_argument("--models", help="models file whose 5th column maps run aliases to the --reference's model "
                                     "names (default: an alias is its own reference name)")
    ap.add_argument("--slice", action="append", default=[], metavar="NAME=REGEX",
                    help="an extra example slice (regex on the example's text); repeatable")
    ap.add_argument("--n_resamples", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--feature_cache", help="the runs' feature cache: with --models, the representation drift "
                                            "(CKA by layer) of each model against its base (6th column)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())

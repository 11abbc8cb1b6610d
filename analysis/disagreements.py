#!/usr/bin/env python
"""Where two models disagree on one task, example by example, and whether it is more than noise.

    python analysis/disagreements.py --task cola --models gpt2-xl comet-distil [--seed 1]

Prints both right / only A right / only B right / both wrong, the exact McNemar p on the discordant pairs, and
a paired bootstrap 95% CI of the main-metric difference; writes <out>/disagreements_<task>.tsv (texts, gold,
both predictions and probabilities) and <out>/slices_<task>.csv.
"""

import argparse
import json
import sys
from pathlib import Path

from frozen_glue import compare, identity, layout
from frozen_glue.errors import ArgumentParser, UserError, run_cli
from frozen_glue.tasks import get_task


def main(argv=None):
    return run_cli(disagreements, argv)


def disagreements(argv):
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, help="GLUE task name")
    ap.add_argument("--models", nargs=2, required=True, metavar=("A", "B"), help="two model aliases under --runs")
    ap.add_argument("--runs", default="runs", help="runs root")
    ap.add_argument("--out", default="reports", help="where the .tsv/.csv go")
    ap.add_argument("--seed", type=int, help="compare this seed's runs (default: all seeds, majority vote)")
    ap.add_argument("--split", help="validation split (MNLI: validation_matched or validation_mismatched)")
    ap.add_argument("--slice", action="append", default=[], metavar="NAME=REGEX", help="extra slice; repeatable")
    ap.add_argument("--n_resamples", type=int, default=2000, help="bootstrap resamples")
    args = ap.parse_args(argv)
    task = get_task(args.task)
    split = args.split or task.validation_splits[0]
    if split not in task.validation_splits:
        raise UserError(f"--split {split}: {task.name} has {', '.join(task.validation_splits)}")
    a, b = args.models
    pa = compare.read_predictions(args.runs, a, task.name, split, seed=args.seed)
    pb = compare.read_predictions(args.runs, b, task.name, split, seed=args.seed)
    kind = identity.relation(pa.attrs["protocol"], pb.attrs["protocol"])
    if kind:
        print(f"note: {a} vs {b}: {kind}", file=sys.stderr)
    result, table = compare.disagreement(task.name, pa, pb, (a, b), n_resamples=args.n_resamples)
    sl = compare.slices(task.name, pa, pb, (a, b), args.slice)
    out = Path(args.out)
    suffix = "" if split == "validation" else f"_{split}"
    layout.atomic_write_bytes(out / f"disagreements_{task.name}{suffix}.tsv", table.to_csv(sep="\t", index=False).encode())
    layout.atomic_write_bytes(out / f"slices_{task.name}{suffix}.csv", sl.to_csv(index=False).encode())
    how = f"seed {args.seed}" if args.seed is not None else "majority vote over seeds"
    print(f"{task.name} ({split}, {how}): {a} vs {b} on {result['n']} examples")
    if "both_right" in result:
        print(f"  both right {result['both_right']}, only {a} right {result['only_a_right']}, "
              f"only {b} right {result['only_b_right']}, both wrong {result['both_wrong']} "
              f"({result['disagree']} disagree); exact McNemar p = {result['mcnemar_p']:.4g}")
    print(f"  {result['metric']} difference {a} − {b} (seed means) = {result['difference']:+.4f}, bootstrap over "
          f"examples and seeds 95% CI [{result['ci_low']:+.4f}, {result['ci_high']:+.4f}], p = {result['p']:.4g}")
    print(sl.to_string(index=False))
    print(json.dumps({"written": str(out / f"disagreements_{task.name}{suffix}.tsv")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

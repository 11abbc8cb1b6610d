"""Reading a run tree (read only) and the mean ± std tables. Analysis is a pure function of the run folders."""

import itertools
import json
from pathlib import Path

import pandas as pd

from .errors import UserError
from .layout import CONFIG_FILE, RESULTS_FILE
from .stats import mean_std, welch_p
from .tasks import TASKS


def load_runs(runs_root):
    """(DataFrame of complete runs, one row per run x reported metric; list of warnings)."""
    root = Path(runs_root)
    if not root.is_dir():
        raise UserError(f"runs dir {root} does not exist; run a study first (make demo, bash launch/all_tasks.sh) "
                        f"or pass --runs DIR")
    rows, warnings = [], []
    for folder in sorted(root.glob("*/*/seed*")):
        model, task, seed = folder.parent.parent.name, folder.parent.name, folder.name.removeprefix("seed")
        if task not in TASKS or not seed.isdigit() or not folder.is_dir():
            continue
        results_path = folder / RESULTS_FILE
        if not results_path.exists():
            warnings.append(f"incomplete run (no {RESULTS_FILE}), not counted: {folder}")
            continue
        try:
            results = json.loads(results_path.read_text())
            assert isinstance(results, dict)
        except (ValueError, AssertionError):
            warnings.append(f"corrupt {RESULTS_FILE}, run skipped: {results_path}")
            continue
        try:
            config = json.loads((folder / CONFIG_FILE).read_text())
        except (OSError, ValueError):
            config = {}
        debug = bool(config.get("debug_run"))
        if debug:
            warnings.append(f"debug run (max_*_samples {config.get('max_samples')}), labelled in tables: {folder}")
        for metric in TASKS[task].report_metrics:
            value = results.get(f"eval_{metric}")
            if value is not None:
                rows.append({"model": model, "task": task, "seed": int(seed), "metric": metric, "value": float(value),
                             "debug": debug, "path": config.get("path"), "folder": str(folder)})
    columns = ["model", "task", "seed", "metric", "value", "debug", "path", "folder"]
    runs = pd.DataFrame(rows, columns=columns)
    if runs.empty:
        raise UserError(f"no complete run under {root} (a run is complete once its {RESULTS_FILE} exists)"
                        + (f"; {len(warnings)} incomplete or corrupt" if warnings else ""))
    return runs, warnings


def task_order(tasks):
    return sorted(set(tasks), key=list(TASKS).index)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per task x metric x model: mean, sample std (ddof=1), n seeds, debug flag."""
    rows = []
    for (task, metric, model), g in runs.groupby(["task", "metric", "model"], sort=False):
        mean, std, n = mean_std(g["value"])
        rows.append({"task": task, "metric": metric, "model": model, "mean": mean, "std": std, "n": n,
                     "seeds": " ".join(map(str, sorted(g["seed"]))), "debug": bool(g["debug"].any())})
    out = pd.DataFrame(rows)
    out["task"] = pd.Categorical(out["task"], task_order(out["task"]), ordered=True)
    out["order"] = [TASKS[t].report_metrics.index(m) for t, m in zip(out["task"], out["metric"])]
    return out.sort_values(["task", "order"], kind="stable").drop(columns="order").reset_index(drop=True)


def pairwise(runs: pd.DataFrame) -> pd.DataFrame:
    """Every pair of models on every task x metric: difference of means and Welch's t-test p across seeds."""
    rows = []
    models = list(dict.fromkeys(runs["model"]))
    for (task, metric), g in runs.groupby(["task", "metric"], sort=False):
        for a, b in itertools.combinations(models, 2):
            va, vb = g.loc[g.model == a, "value"].tolist(), g.loc[g.model == b, "value"].tolist()
            if va and vb:
                rows.append({"task": task, "metric": metric, "model_a": a, "model_b": b,
                             "diff": sum(va) / len(va) - sum(vb) / len(vb), "welch_p": welch_p(va, vb),
                             "n_a": len(va), "n_b": len(vb)})
    return pd.DataFrame(rows, columns=["task", "metric", "model_a", "model_b", "diff", "welch_p", "n_a", "n_b"])


def fmt(mean, std, n, debug=False):
    text = f"{mean:.3f} ± {std:.3f}" if std == std else f"{mean:.3f}"
    return f"{text} (n={n})" + (" †debug" if debug else "")


def wide_table(summary: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The table of summary.md/.tex: one row per task x metric, a column per model, then a difference and
    Welch p column per model pair."""
    models = list(dict.fromkeys(summary["model"]))
    out = []
    for (task, metric), g in summary.groupby(["task", "metric"], sort=False, observed=True):
        row = {"task": task, "metric": metric}
        for m in models:
            hit = g[g.model == m]
            row[m] = fmt(*hit.iloc[0][["mean", "std", "n", "debug"]]) if len(hit) else "—"
        for _, p in pairs[(pairs.task == task) & (pairs.metric == metric)].iterrows():
            row[f"{p.model_a} − {p.model_b}"] = f"{p['diff']:+.3f} (p={p.welch_p:.3g})"
        out.append(row)
    return pd.DataFrame(out)

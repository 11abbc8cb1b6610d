"""Reading a run tree (read only) and the mean ± std tables. Analysis is a pure function of the run folders.
Must not write anything, nor average runs made with different settings (it shows them as mixed)."""

import itertools
import json
from pathlib import Path

import pandas as pd

from .errors import UserError
from .layout import RESULTS_FILE, iter_runs
from .metrics import get_metric
from .stats import mean_std, welch_p
from .tasks import TASKS


def load_runs(runs_root):
    """(DataFrame of complete runs, one row per run x reported metric; list of warnings). Runs come from
    layout.iter_runs (complete ones only); each row carries its protocol hash, and the table's attrs hold
    {hash: protocol} so that mixed cells can name what differs."""
    root = Path(runs_root)
    if not root.is_dir():
        raise UserError(f"runs dir {root} does not exist; run a study first (make demo, bash launch/all_tasks.sh) "
                        f"or pass --runs DIR")
    found, warnings = iter_runs(root)
    rows, protocols, debug_cuts = [], {}, {}
    for run in found:
        debug = bool(run.config.get("debug_run"))
        if debug:  # one line per distinct cut, not per run: a small study can have dozens
            debug_cuts.setdefault(json.dumps(run.config.get("max_samples"), sort_keys=True), []).append(run.folder)
        protocols[run.protocol_hash] = run.protocol
        for metric in TASKS[run.task].report_metrics:
            value = run.results.get(f"eval_{metric}")
            if value is not None:
                rows.append({"model": run.model, "task": run.task, "seed": run.seed, "metric": metric,
                             "value": float(value), "majority": run.results.get(f"eval_majority_{metric}"),
                             "debug": debug, "path": run.config.get("path"),
                             "protocol": run.protocol_hash, "collapsed": bool(run.results.get("head_collapsed")),
                             "folder": str(run.folder)})
        if run.results.get("head_collapsed"):
            warnings.append(f"collapsed head ({run.results.get('head_collapse_reason')}), marked in tables and "
                            f"figures: {run.folder}")
    for cut, folders in debug_cuts.items():
        warnings.append(f"{len(folders)} debug run(s) (max_*_samples {cut}), labelled in tables: "
                        f"{folders[0]}" + (f" and {len(folders) - 1} more" if len(folders) > 1 else ""))
    columns = ["model", "task", "seed", "metric", "value", "majority", "debug", "path", "protocol", "collapsed",
               "folder"]
    runs = pd.DataFrame(rows, columns=columns)
    if runs.empty:
        raise UserError(f"no complete run under {root} (a run is complete once its {RESULTS_FILE} exists)"
                        + (f"; {len(warnings)} incomplete or corrupt" if warnings else ""))
    runs.attrs["protocols"] = protocols
    for (model, task), g in runs.groupby(["model", "task"]):
        if g["protocol"].nunique(dropna=False) > 1:
            warnings.append(f"{model}/{task} mixes runs made with different settings ({mixed_protocols(runs, g)}); "
                            f"its cells are shown as mixed, not averaged")
    return runs, warnings


def mixed_protocols(runs, group) -> str:
    """What differs between the protocols of a group of rows: 'learning_rate 0.02/0.05, ...'."""
    protos = [runs.attrs.get("protocols", {}).get(h) for h in dict.fromkeys(group["protocol"])]
    if any(p is None for p in protos):
        return "some runs have no recorded protocol"
    keys = sorted(k for k in set().union(*protos) if len({json.dumps(p.get(k)) for p in protos}) > 1)
    return ", ".join(f"{k} {'/'.join(str(p.get(k)) for p in protos)}" for k in keys)


def task_order(tasks):
    return sorted(set(tasks), key=list(TASKS).index)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per task x metric x model: mean, sample std (ddof=1), n seeds, debug flag."""
    rows = []
    for (task, metric, model), g in runs.groupby(["task", "metric", "model"], sort=False):
        mixed = mixed_protocols(runs, g) if g["protocol"].nunique(dropna=False) > 1 else ""
        mean, std, n = mean_std(g["value"]) if not mixed else (float("nan"), float("nan"), len(g))
        rows.append({"task": task, "metric": metric, "model": model, "mean": mean, "std": std, "n": n,
                     "seeds": " ".join(map(str, sorted(g["seed"]))), "debug": bool(g["debug"].any()),
                     "mixed": mixed, "protocol": g["protocol"].iloc[0] if not mixed else None,
                     "collapsed": int(g["collapsed"].sum())})
    out = pd.DataFrame(rows)
    out.attrs = runs.attrs
    out["task"] = pd.Categorical(out["task"], task_order(out["task"]), ordered=True)
    out["order"] = [TASKS[t].report_metrics.index(m) for t, m in zip(out["task"], out["metric"])]
    return out.sort_values(["task", "order"], kind="stable").drop(columns="order").reset_index(drop=True)


def pairwise(runs: pd.DataFrame) -> pd.DataFrame:
    """Every pair of models on every task x metric: difference of means and Welch's t-test p across seeds. A
    model whose runs mix protocols is not compared; a pair made with different protocols says which arguments
    differ (`protocols_differ`)."""
    rows = []
    models = list(dict.fromkeys(runs["model"]))
    for (task, metric), g in runs.groupby(["task", "metric"], sort=False):
        for a, b in itertools.combinations(models, 2):
            ga, gb = g[g.model == a], g[g.model == b]
            if not len(ga) or not len(gb) or ga["protocol"].nunique(dropna=False) > 1 \
                    or gb["protocol"].nunique(dropna=False) > 1:
                continue
            va, vb = ga["value"].tolist(), gb["value"].tolist()
            differ = mixed_protocols(runs, pd.concat([ga, gb])) if ga["protocol"].iloc[0] != gb["protocol"].iloc[0] \
                else ""
            rows.append({"task": task, "metric": metric, "model_a": a, "model_b": b,
                         "diff": sum(va) / len(va) - sum(vb) / len(vb), "welch_p": welch_p(va, vb),
                         "n_a": len(va), "n_b": len(vb), "protocols_differ": differ,
                         "collapsed": int(ga["collapsed"].sum() + gb["collapsed"].sum())})
    return pd.DataFrame(rows, columns=["task", "metric", "model_a", "model_b", "diff", "welch_p", "n_a", "n_b",
                                       "protocols_differ", "collapsed"])


def fmt_p(p) -> str:
    """A p-value as tables print it: 3 significant digits, '< 0.001' below that resolution, '—' when undefined."""
    if p != p:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def fmt(mean, std, n, debug=False, mixed="", collapsed=0):
    if mixed:
        return f"mixed settings, not averaged: {mixed} (n={n})"
    text = f"{mean:.3f} ± {std:.3f}" if std == std else f"{mean:.3f}"
    return f"{text} (n={n})" + (" †debug" if debug else "") + (f" ⚠{collapsed}/{n} collapsed" if collapsed else "")


def wide_table(summary: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The table of summary.md/.tex: one row per task x metric, a column per model, then a difference and
    Welch p column per model pair."""
    models = list(dict.fromkeys(summary["model"]))
    out = []
    for (task, metric), g in summary.groupby(["task", "metric"], sort=False, observed=True):
        row = {"task": task, "metric": metric}
        for m in models:
            hit = g[g.model == m]
            row[m] = fmt(*hit.iloc[0][["mean", "std", "n", "debug", "mixed", "collapsed"]]) if len(hit) else "—"
        for _, p in pairs[(pairs.task == task) & (pairs.metric == metric)].iterrows():
            p_text = fmt_p(p.welch_p)
            row[f"{p.model_a} − {p.model_b}"] = (f"{p['diff']:+.3f} (p{'' if p_text.startswith('<') else '='}"
                                                 f"{p_text})" + (f" ‡settings differ: {p.protocols_differ}"
                                                                 if p.protocols_differ else "")
                                                 + (f" ⚠{p.collapsed} collapsed head(s): not a model difference"
                                                    if p.collapsed else ""))
        out.append(row)
    return pd.DataFrame(out)


def load_layers(found) -> pd.DataFrame:
    """One row per --probe_layers run of `found` (layout.iter_runs' complete runs) x layer x reported metric
    (model, task, seed, layer, metric, value, protocol)."""
    rows = [{"model": run.model, "task": run.task, "seed": run.seed, "layer": layer, "metric": metric,
             "value": float(scores[f"eval_{metric}"]), "protocol": run.protocol_hash}
            for run in found for layer, scores in run.layers.items()
            for metric in TASKS[run.task].report_metrics if scores.get(f"eval_{metric}") is not None]
    return pd.DataFrame(rows, columns=["model", "task", "seed", "layer", "metric", "value", "protocol"])


def summarize_layers(layers: pd.DataFrame) -> pd.DataFrame:
    """summary_layers.csv: model, task, layer, metric, mean, std (ddof=1), n; runs made with different settings
    are not averaged (mean and std left empty, `mixed` says so)."""
    rows = []
    for (model, task, layer, metric), g in layers.groupby(["model", "task", "layer", "metric"], sort=False):
        mixed = g["protocol"].nunique(dropna=False) > 1
        mean, std, n = mean_std(g["value"]) if not mixed else (float("nan"), float("nan"), len(g))
        rows.append({"model": model, "task": task, "layer": int(layer), "metric": metric, "mean": mean, "std": std,
                     "n": n, "mixed": mixed})
    out = pd.DataFrame(rows, columns=["model", "task", "layer", "metric", "mean", "std", "n", "mixed"])
    return out.sort_values(["task", "model", "metric", "layer"], key=lambda c: c.map(list(TASKS).index)
                           if c.name == "task" else c, kind="stable").reset_index(drop=True)


def best_layers(summary_layers: pd.DataFrame) -> pd.DataFrame:
    """Per model x task: the layer with the best mean main metric (metrics.py says which direction is better; ties go
    to the higher layer, the top one when all agree)."""
    rows = []
    for (model, task), g in summary_layers.groupby(["model", "task"], sort=False):
        main = g[(g.metric == TASKS[task].report_metrics[0]) & g["mean"].notna()]
        if main.empty:
            continue
        higher = get_metric(TASKS[task].report_metrics[0]).higher_is_better
        target = main["mean"].max() if higher else main["mean"].min()
        best = main[main["mean"] == target].sort_values("layer").iloc[-1]  # ties: the highest layer
        top = main.loc[main["layer"].idxmax()]
        rows.append({"model": model, "task": task, "metric": best.metric, "best_layer": int(best.layer),
                     "best_mean": best["mean"], "best_std": best["std"], "top_layer": int(top.layer),
                     "top_mean": top["mean"], "top_std": top["std"]})
    return pd.DataFrame(rows)


def controls(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task x metric: the majority-class baseline (train majority; STS-B: train mean) beside each model's mean,
    so no score is read without what needs no model at all."""
    rows = []
    for (task, metric), g in runs.groupby(["task", "metric"], sort=False):
        majority = pd.to_numeric(g["majority"], errors="coerce").dropna()
        if majority.empty:
            continue
        row = {"task": task, "metric": metric, "majority baseline": float(majority.iloc[0])}
        row.update({model: float(m["value"].mean()) for model, m in g.groupby("model", sort=False)})
        rows.append(row)
    return pd.DataFrame(rows)


def selections(found) -> pd.DataFrame:
    """Per model x task: the head setting chosen on the train hold-out (selection.json of the runs `found`), and
    on how many rows."""
    rows = {}
    for run in found:
        chosen = run.selection.get("chosen")
        if chosen:
            rows[run.model, run.task] = {"model": run.model, "task": run.task, **chosen,
                                         "holdout_rows": run.selection.get("holdout_rows"),
                                         "grid size": len(run.selection.get("grid", []))}
    return pd.DataFrame(list(rows.values()))


def layer_tests(layers: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Per task x pair of models: the difference of the mean main metric and Welch's p across seeds, at the top
    layer (the model's own head input) and at each model's best layer (the specialized model may keep the ability
    below the top)."""
    rows = []
    for task, b in best.groupby("task", sort=False):
        metric = TASKS[task].report_metrics[0]
        scores = layers[(layers.task == task) & (layers.metric == metric)]
        at = {(m, layer): scores[(scores.model == m) & (scores.layer == layer)]["value"].to_numpy()
              for m, layer in itertools.chain(zip(b.model, b.best_layer), zip(b.model, b.top_layer))}
        for (_, x), (_, y) in itertools.combinations(b.iterrows(), 2):
            for which in ("top_layer", "best_layer"):
                va, vb = at[x.model, x[which]], at[y.model, y[which]]
                rows.append({"task": task, "model_a": x.model, "model_b": y.model, "layers": which.split("_")[0],
                             "layer_a": int(x[which]), "layer_b": int(y[which]), "metric": metric,
                             "difference": float(va.mean() - vb.mean()), "welch_p": welch_p(va, vb)})
    return pd.DataFrame(rows)

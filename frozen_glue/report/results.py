"""Reading a run tree (read only) and the mean ± std tables. Analysis is a pure function of the run folders.
Must not write anything, nor average runs of different identities (`aggregate` shows them as mixed, for every
table and figure alike)."""

import itertools
import json
from pathlib import Path

import pandas as pd

from frozen_glue.config import adapters
from frozen_glue.core import identity
from frozen_glue.core.errors import UserError
from frozen_glue.core.layout import RESULTS_FILE, counted, iter_runs
from frozen_glue.core.metrics import get_metric
from frozen_glue.core.tasks import TASKS
from frozen_glue.measures.stats import mean_std, welch_p


def load_runs(runs_root):
    """(DataFrame of complete runs, one row per run x reported metric; list of warnings). Runs come from
    layout.iter_runs (complete ones only); each row carries its identity hash (identity.py), and the table's attrs
    hold {identity hash: config} so that mixed cells can name what differs. A deterministic probe (--probe
    logistic: every seed is the same fit) counts as one run, its lowest seed's."""
    root = Path(runs_root)
    if not root.is_dir():
        raise UserError(f"runs dir {root} does not exist; run a study first (make demo, bash launch/all_tasks.sh) "
                        f"or pass --runs DIR")
    found, warnings = iter_runs(root)
    rows, configs, debug_runs = [], {}, []
    for run in counted(found):
        debug = bool(run.config.get("debug_run"))
        if debug:
            debug_runs.append(run)
        configs[run.identity_hash] = run.config
        for metric in TASKS[run.task].report_metrics:
            value = run.results.get(f"eval_{metric}")
            if value is not None:
                rows.append({"model": run.model, "task": run.task, "seed": run.seed, "metric": metric,
                             "value": float(value), "majority": run.results.get(f"eval_majority_{metric}"),
                             "debug": debug, "path": run.config.get("path"), "identity": run.identity_hash,
                             "collapsed": bool(run.results.get("head_collapsed")), "deterministic": run.deterministic,
                             "folder": str(run.folder)})
        if run.results.get("head_collapsed"):
            warnings.append(f"collapsed head ({run.results.get('head_collapse_reason')}), marked in tables and "
                            f"figures: {run.folder}")
    if debug_runs:  # one line, not one per run: a small debug study has dozens
        cuts = sorted({json.dumps(r.config.get("max_samples"), sort_keys=True) for r in debug_runs})
        warnings.insert(0, f"{len(debug_runs)} debug run(s) (max_*_samples {', '.join(cuts)}), labelled †debug in "
                           f"tables: {', '.join(sorted({f'{r.model}/{r.task}' for r in debug_runs}))}")
    columns = ["model", "task", "seed", "metric", "value", "majority", "debug", "path", "identity", "collapsed",
               "deterministic", "folder"]
    runs = pd.DataFrame(rows, columns=columns)
    if runs.empty:
        raise UserError(f"no complete run under {root} (a run is complete once its {RESULTS_FILE} exists)"
                        + (f"; {len(warnings)} incomplete or corrupt" if warnings else ""))
    runs.attrs["configs"] = configs
    for (model, task), g in runs.groupby(["model", "task"]):
        if g["identity"].nunique(dropna=False) > 1:
            warnings.append(f"{model}/{task} mixes runs of different identities ({mixed(runs, g)}); its cells are "
                            f"shown as mixed, not averaged")
    return runs, warnings


def mixed(runs, group) -> str:
    """What differs between the identities of a group of rows ('' when they share one): 'learning_rate
    0.02 -> 0.05', 'the model's weights differ', ..."""
    hashes = list(dict.fromkeys(group["identity"]))
    if len(hashes) < 2:
        return ""
    configs = [runs.attrs.get("configs", {}).get(h) or {} for h in hashes]
    return "; ".join(dict.fromkeys(identity.difference(configs[0], c) or "another identity" for c in configs[1:]))


def task_order(tasks):
    return sorted(set(tasks), key=list(TASKS).index)


def aggregate(runs: pd.DataFrame, by: list) -> pd.DataFrame:
    """THE aggregation of per-run values (tables, figures, controls and layer curves all use it): one row per group
    of `by` with mean, sample std (ddof=1; NaN for one run), n, seeds, `mixed` (what differs when the group's runs
    have several identities: then mean and std are NaN, never an average), collapsed (how many runs), debug and
    deterministic."""
    rows = []
    for key, g in runs.groupby(by, sort=False, observed=True):
        why = mixed(runs, g)
        mean, std, n = mean_std(g["value"]) if not why else (float("nan"), float("nan"), len(g))
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "mean": mean, "std": std, "n": n,
                     "seeds": " ".join(map(str, sorted(g["seed"]))), "mixed": why,
                     "identity": None if why else g["identity"].iloc[0],
                     "collapsed": int(g["collapsed"].sum()) if "collapsed" in g else 0,
                     "debug": bool(g["debug"].any()) if "debug" in g else False,
                     "deterministic": bool(g["deterministic"].any()) if "deterministic" in g else False})
    out = pd.DataFrame(rows, columns=[*by, "mean", "std", "n", "seeds", "mixed", "identity", "collapsed", "debug",
                                      "deterministic"])
    out.attrs = runs.attrs
    return out


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per task x metric x model (aggregate): mean, sample std, n seeds, debug, mixed, collapsed."""
    out = aggregate(runs, ["task", "metric", "model"])
    out["task"] = pd.Categorical(out["task"], task_order(out["task"]), ordered=True)
    out["order"] = [TASKS[t].report_metrics.index(m) for t, m in zip(out["task"], out["metric"])]
    return out.sort_values(["task", "order"], kind="stable").drop(columns="order").reset_index(drop=True)


def comparison_kind(runs, a_rows, b_rows) -> str:
    """identity.relation of two models' runs: 'control', 'settings differ: …' or ''."""
    configs = runs.attrs.get("configs", {})
    return identity.relation_of(*(configs.get(rows["identity"].iloc[0]) for rows in (a_rows, b_rows)))


def pairwise(runs: pd.DataFrame) -> pd.DataFrame:
    """Every pair of models on every task x metric: difference of means and Welch's t-test p across seeds (seed to
    seed only: it ignores that the dev set is a sample; compare.py holds the example-level test). A model whose
    runs mix identities, or a deterministic probe (one run), gets no Welch p; `kind` says 'control' or which
    settings differ."""
    rows = []
    models = list(dict.fromkeys(runs["model"]))
    for (task, metric), g in runs.groupby(["task", "metric"], sort=False):
        for a, b in itertools.combinations(models, 2):
            ga, gb = g[g.model == a], g[g.model == b]
            if not len(ga) or not len(gb) or mixed(runs, ga) or mixed(runs, gb):
                continue
            va, vb = ga["value"].tolist(), gb["value"].tolist()
            seeded = not (ga["deterministic"].any() or gb["deterministic"].any())
            rows.append({"task": task, "metric": metric, "model_a": a, "model_b": b,
                         "diff": sum(va) / len(va) - sum(vb) / len(vb),
                         "welch_p": welch_p(va, vb) if seeded else float("nan"),
                         "n_a": len(va), "n_b": len(vb), "kind": comparison_kind(runs, ga, gb),
                         "collapsed": int(ga["collapsed"].sum() + gb["collapsed"].sum())})
    return pd.DataFrame(rows, columns=["task", "metric", "model_a", "model_b", "diff", "welch_p", "n_a", "n_b",
                                       "kind", "collapsed"])


def fmt_p(p) -> str:
    """A p-value as tables print it: 3 significant digits, '< 0.001' below that resolution, '—' when undefined."""
    if p != p:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def fmt(row) -> str:
    """One aggregated cell as tables print it: 'mean ± std (n=5)', a deterministic probe's single value, or what
    makes a cell mixed."""
    if row["mixed"]:
        return f"mixed, not averaged: {row['mixed']} (n={row['n']})"
    if row["deterministic"]:
        return f"{row['mean']:.3f} (deterministic probe, one run)" + (" †debug" if row["debug"] else "")
    text = f"{row['mean']:.3f} ± {row['std']:.3f}" if row["std"] == row["std"] else f"{row['mean']:.3f}"
    return f"{text} (n={row['n']})" + (" †debug" if row["debug"] else "") + (
        f" ⚠{row['collapsed']}/{row['n']} collapsed" if row["collapsed"] else "")


def wide_table(summary: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The table of summary.md/.tex: one row per task x metric, a column per model, then a difference column per
    model pair (with Welch's seed-to-seed p)."""
    models = list(dict.fromkeys(summary["model"]))
    out = []
    for (task, metric), g in summary.groupby(["task", "metric"], sort=False, observed=True):
        row = {"task": task, "metric": metric}
        for m in models:
            hit = g[g.model == m]
            row[m] = fmt(hit.iloc[0]) if len(hit) else "—"
        for _, p in pairs[(pairs.task == task) & (pairs.metric == metric)].iterrows():
            p_text = fmt_p(p.welch_p)
            welch = f" (seed-to-seed p{'' if p_text.startswith('<') else '='}{p_text})" if p_text != "—" else ""
            row[f"{p.model_a} − {p.model_b}"] = (f"{p['diff']:+.3f}{welch}" + (f" ‡{p.kind}" if p.kind else "")
                                                 + (f" ⚠{p.collapsed} collapsed head(s): not a model difference"
                                                    if p.collapsed else ""))
        out.append(row)
    return pd.DataFrame(out)


def load_layers(found) -> pd.DataFrame:
    """One row per --probe_layers run of `found` (layout.iter_runs' complete runs) x layer x reported metric
    (model, task, seed, layer, metric, value, identity, and the head setting chosen for that layer, if any); a
    deterministic probe counts once (counted)."""
    rows = [{"model": run.model, "task": run.task, "seed": run.seed, "layer": layer, "metric": metric,
             "value": float(scores[f"eval_{metric}"]), "identity": run.identity_hash,
             "deterministic": run.deterministic,
             "setting": setting_text(scores)}
            for run in counted(found) for layer, scores in run.layers.items()
            for metric in TASKS[run.task].report_metrics if scores.get(f"eval_{metric}") is not None]
    out = pd.DataFrame(rows, columns=["model", "task", "seed", "layer", "metric", "value", "identity",
                                      "deterministic", "setting"])
    out.attrs["configs"] = {run.identity_hash: run.config for run in found}
    return out


def setting_text(scores: dict) -> str | None:
    """'lr 0.01, wd 0' of a layer's selected head setting (layer_results.json's selected_*), or None."""
    if scores.get("selected_learning_rate") is None:
        return None
    return f"lr {scores['selected_learning_rate']:g}, wd {scores.get('selected_weight_decay', 0):g}"


def summarize_layers(layers: pd.DataFrame) -> pd.DataFrame:
    """summary_layers.csv: model, task, layer, metric, mean, std (ddof=1), n, the chosen head setting(s); runs of
    different identities are not averaged (aggregate: mean and std empty, `mixed` says what differs)."""
    out = aggregate(layers.assign(collapsed=False, debug=False), ["model", "task", "layer", "metric"])
    settings = layers.groupby(["model", "task", "layer", "metric"], sort=False)["setting"].agg(
        lambda v: "; ".join(dict.fromkeys(x for x in v if x)) or None)
    out["setting"] = [settings.get(tuple(k)) for k in out[["model", "task", "layer", "metric"]].itertuples(
        index=False)]
    out = out[["model", "task", "layer", "metric", "mean", "std", "n", "setting", "mixed"]].astype({"layer": int})
    return out.sort_values(["task", "model", "metric", "layer"], key=lambda c: c.map(list(TASKS).index)
                           if c.name == "task" else c, kind="stable").reset_index(drop=True)


def best_layers(summary_layers: pd.DataFrame) -> pd.DataFrame:
    """Per model x task: the layer with the best mean main metric (metrics.py says which direction is better; ties go
    to the higher layer, the top one when all agree)."""
    rows = []
    for (model, task), g in summary_layers.groupby(["model", "task"], sort=False):
        main = g[(g.metric == TASKS[task].main_metric) & g["mean"].notna()]
        if main.empty:
            continue
        higher = get_metric(TASKS[task].main_metric).higher_is_better
        target = main["mean"].max() if higher else main["mean"].min()
        best = main[main["mean"] == target].sort_values("layer").iloc[-1]  # ties: the highest layer
        top = main.loc[main["layer"].idxmax()]
        rows.append({"model": model, "task": task, "metric": best.metric, "best_layer": int(best.layer),
                     "best_mean": best["mean"], "best_std": best["std"], "top_layer": int(top.layer),
                     "top_mean": top["mean"], "top_std": top["std"]})
    return pd.DataFrame(rows)


def controls(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task x metric: the majority-class baseline (train majority; STS-B: train mean) beside each model's
    aggregated mean (aggregate: a mixed cell stays empty), so no score is read without what needs no model."""
    rows = []
    summary = aggregate(runs, ["task", "metric", "model"])
    for (task, metric), g in runs.groupby(["task", "metric"], sort=False):
        majority = pd.to_numeric(g["majority"], errors="coerce").dropna()
        if majority.empty:
            continue
        row = {"task": task, "metric": metric, "majority baseline": float(majority.iloc[0])}
        cells = summary[(summary.task == task) & (summary.metric == metric)]
        row.update({c.model: "mixed" if c.mixed else c["mean"] for _, c in cells.iterrows()})
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
        metric = TASKS[task].main_metric
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


def adapters_of(runs_root, models, bases=None) -> dict:
    """{alias: 'A + LoRA (r 8, q_proj v_proj, 0.4 % of A's parameters)'} of every model whose runs record a merged
    PEFT adapter (config.json `adapter`); A is its base's alias (`bases`: the models file's base column), else the
    base's name."""
    found, _ = iter_runs(runs_root)
    out = {}
    for run in found:
        info = run.config.get("adapter")
        if info and run.model in models and run.model not in out:
            out[run.model] = adapters.describe(info, (bases or {}).get(run.model) or Path(str(info.get("base"))).name)
    return out

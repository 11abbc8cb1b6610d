"""The report's parts on how much the frozen models know (issue 23): codelength and compression by layer (mdl.json),
selectivity by layer (selectivity.json), V-information per model (all_results.json), the examples a derived model
lost the most bits on (predictions' pvi), and each model's expected layer and where two curves separate. Reads
complete runs only (layout.iter_runs) and returns markdown lines; analysis/summarize.py writes the files."""

import itertools
import sys

import numpy as np
import pandas as pd

from frozen_glue.config.models_file import read_models
from frozen_glue.core import layout
from frozen_glue.core.errors import UserError
from frozen_glue.core.tasks import TASKS
from frozen_glue.measures import information
from frozen_glue.measures.information import CONVEX_GAP
from frozen_glue.report import compare, figures, predictions, results

MEASURES = {layout.MDL_FILE: ("codelength_kbits", "compression"),
            layout.SELECTIVITY_FILE: ("task", "control", "selectivity")}
SHOWN_EXAMPLES = 5  # the report shows the top of each bits-lost file


CONVEX = {layout.CONVEX_FILE: ("head", "convex", "gap")}


def load_measures(found, files=None) -> pd.DataFrame:
    """One row per counted run (layout.counted: a deterministic probe's seeds are one run) x layer x measure of
    `files` ({file: measures}; default MEASURES: mdl.json and selectivity.json) (model, task, seed, layer, measure,
    value, identity, deterministic); attrs hold {identity: config}, as results.load_runs' do, so that
    results.aggregate can say what a mixed cell mixes."""
    counted = list(layout.counted(found))
    rows = [{"model": run.model, "task": run.task, "seed": run.seed, "layer": int(layer), "measure": measure,
             "value": float(scores[measure]), "identity": run.identity_hash, "deterministic": run.deterministic}
            for run in counted for name, measures in (files or MEASURES).items()
            for layer, scores in layout.read_json(run.folder / name).get("layers", {}).items()
            for measure in measures if scores.get(measure) is not None]
    out = pd.DataFrame(rows, columns=["model", "task", "seed", "layer", "measure", "value", "identity",
                                      "deterministic"])
    out.attrs["configs"] = {run.identity_hash: run.config for run in counted}
    return out


def summarize_measures(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1) and n over seeds per model x task x layer x measure, through results.aggregate (the one
    aggregation: runs of different identities are not averaged, `mixed` says what differs)."""
    return results.aggregate(rows, ["model", "task", "layer", "measure"])


def _cell(mean, std, mixed=""):
    if mixed:
        return f"mixed, not averaged: {mixed}"
    if mean != mean:
        return "—"
    return f"{mean:.3f} ± {std:.3f}" if std == std else f"{mean:.3f}"


def v_information(found) -> pd.DataFrame:
    """Per counted run x task: eval_v_information (bits per validation example), with the run's identity, for
    results.aggregate."""
    counted = list(layout.counted(found))
    rows = [{"model": r.model, "task": r.task, "seed": r.seed, "value": r.results["eval_v_information"],
             "identity": r.identity_hash, "deterministic": r.deterministic,
             "collapsed": bool(r.results.get("head_collapsed"))}
            for r in counted if r.results.get("eval_v_information") is not None]
    out = pd.DataFrame(rows, columns=["model", "task", "seed", "value", "identity", "deterministic", "collapsed"])
    out.attrs["configs"] = {run.identity_hash: run.config for run in counted}
    return out


SUMMARY = ("codelength_kbits", "compression", "selectivity", "v_information_bits")


def summary_table(measures, vinfo, task, models) -> pd.DataFrame:
    """summary_information.csv's rows for one task: per model, the top probed layer's codelength, compression and
    selectivity, and the V-information of the run's own head (mean and std over counted runs, results.aggregate;
    `mixed` names what a mixed cell mixes)."""
    rows = []
    vsummary = results.aggregate(vinfo, ["model", "task"]) if len(vinfo) else pd.DataFrame(
        columns=["model", "task", "mean", "std", "mixed", "collapsed"])
    for model in models:
        m = measures[(measures.task == task) & (measures.model == model)]
        row = {"task": task, "model": model, "top_layer": int(m["layer"].max()) if len(m) else None}
        top = m[m.layer == m["layer"].max()].set_index("measure")
        for measure in SUMMARY[:3]:
            row[f"{measure}_mean"], row[f"{measure}_std"], row[f"{measure}_mixed"] = \
                top.loc[measure, ["mean", "std", "mixed"]] if measure in top.index else (np.nan, np.nan, "")
        v = vsummary[(vsummary.task == task) & (vsummary.model == model)]
        row["v_information_bits_mean"], row["v_information_bits_std"], row["v_information_bits_mixed"] = \
            (v.iloc[0]["mean"], v.iloc[0]["std"], v.iloc[0]["mixed"]) if len(v) else (np.nan, np.nan, "")
        row["v_information_collapsed"] = int(v.iloc[0]["collapsed"]) if len(v) else 0
        rows.append(row)
    return pd.DataFrame(rows)


def summary_markdown(summary) -> str:
    """The summary rows as mean ± std cells; a mixed model says what it mixes, a negative V-information of a head
    with collapsed runs is flagged."""
    shown = summary[["model", "top_layer"]].astype(object).where(summary[["model", "top_layer"]].notna(), "—")
    for measure in SUMMARY:
        shown[measure] = [_cell(m, s, x) for m, s, x in zip(summary[f"{measure}_mean"], summary[f"{measure}_std"],
                                                             summary[f"{measure}_mixed"])]
    shown["v_information_bits"] = [cell + (f" ⚠{c} collapsed" if c else "") for cell, c in
                                   zip(shown["v_information_bits"], summary["v_information_collapsed"])]
    absent = [m for m in SUMMARY
              if summary[f"{m}_mean"].isna().all() and not summary[f"{m}_mixed"].astype(bool).any()]
    note = "" if not absent else "\n\nNot measured for any model here: " + ", ".join(
        f"{m} ({HOW[m]})" for m in absent) + "."
    return shown.drop(columns=absent).to_markdown(index=False) + note


HOW = {"codelength_kbits": "--probe_mdl", "compression": "--probe_mdl", "selectivity": "--probe_control",
       "v_information_bits": "written by every run of a classification task"}


def layer_table(measures, task) -> pd.DataFrame:
    """By layer and model: every measure's mean ± std over seeds."""
    part = measures[measures.task == task]
    if part.empty:
        return part
    part = part.assign(cell=[_cell(m, s, x) for m, s, x in zip(part["mean"], part["std"], part["mixed"])])
    wide = part.pivot_table(index=["layer", "model"], columns="measure", values="cell", aggfunc="first", sort=False)
    order = [m for ms in MEASURES.values() for m in ms if m in wide.columns]
    return wide[order].reset_index().sort_values(["layer", "model"], kind="stable")


def mdl_figure(measures, task, models):
    """fig_mdl_<task>.png: online-code compression by layer, one line per model with a ±std band."""
    fig, ax = figures.plt.subplots(figsize=(4.5, 3.0))
    data = measures[(measures.task == task) & (measures.measure == "compression")]
    for i, model in enumerate(models):
        rows = data[data.model == model].sort_values("layer")
        if len(rows):
            x, mean, std = rows["layer"].to_numpy(), rows["mean"].to_numpy(), np.nan_to_num(rows["std"].to_numpy())
            ax.plot(x, mean, marker="o", ms=3, color=f"C{i}", label=model)
            ax.fill_between(x, mean - std, mean + std, color=f"C{i}", alpha=0.2)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="uniform code")
    return figures._by_layer(fig, ax, "compression (uniform / online)", f"{task.upper()}: description length", None)


def layer_lines(summary_layers, task) -> list:
    """Markdown lines for the layer section: each model's expected layer (information.expected_layer) of its mean
    main-metric curve, and for each pair of models the layer from which their curves separate
    (information.separation_layer)."""
    metric = TASKS[task].main_metric
    data = summary_layers[(summary_layers.task == task) & (summary_layers.metric == metric)]
    curves = {model: g.sort_values("layer") for model, g in data.groupby("model", sort=False)}
    if not curves:
        return []
    expected = {model: information.expected_layer(g["layer"], g["mean"]) for model, g in curves.items()}
    rows = [{"model": model, "expected layer": "—" if at is None else f"{at:.2f}",
             "layers": f"{int(curves[model]['layer'].min())}-{int(curves[model]['layer'].max())}"}
            for model, at in expected.items()]
    lines = [f"Expected layer (Tenney et al. 2019: the centre of gravity of the {metric} curve's gains, "
             "Σ l·Δ_l / Σ Δ_l with Δ_l = s_l − s_(l−1) of the curve's running best, so a dip adds no gain; — when "
             "no layer beats the lowest):\n",
             pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True), ""]
    for (a, ga), (b, gb) in itertools.combinations(curves.items(), 2):
        both = ga.merge(gb, on="layer", suffixes=("_a", "_b"))
        if both.empty:
            continue
        at = information.separation_layer(both["layer"], both["mean_a"], both["std_a"], both["n_a"], both["mean_b"],
                                          both["std_b"], both["n_b"])
        lines.append(f"- {a} vs {b}: " + (f"the curves separate from layer {at} on (at every layer from there to "
                                          f"the top, the difference has the top layer's sign and Welch's t-test "
                                          f"across seeds gives p < 0.05)" if at is not None else
                                          "the curves do not separate at the top layer (Welch's t-test across "
                                          "seeds p ≥ 0.05, or one seed only)"))
    return lines + [""]


def convex_section(runs_root) -> list:
    """The heads against --probe_convex's convex probe: every model x task x layer where the trained head's mean
    main metric trails the probe on the same features by more than CONVEX_GAP, or one line saying none does; []
    when no run measured it."""
    found, _ = layout.iter_runs(runs_root)
    table = summarize_measures(load_measures(found, CONVEX))
    if table.empty:
        return []
    wide = table.pivot_table(index=["task", "model", "layer"], columns="measure", values="mean", sort=False,
                             dropna=False).reset_index().reindex(columns=["task", "model", "layer", "head", "convex",
                                                                          "gap"])
    unjudged = int(wide["gap"].isna().sum())  # a metric undefined there (a constant score), or mixed runs
    wide = wide[wide["gap"].notna()]
    trailing = wide[wide["gap"] > CONVEX_GAP]
    lines = ["## Heads against a convex probe\n",
             f"At every probed layer, the trained head's validation main metric (mean over seeds) beside a convex "
             f"probe on the same features (--probe logistic's; convex.json describes it). Where the head trails "
             f"it by more than {CONVEX_GAP}, the head is under-trained there: read that score as the head's, not "
             f"the model's (--standardize_features, more epochs or a wider head grid close most such gaps; docs/analysis.md).\n"]
    if unjudged:
        lines.append(f"{unjudged} cell(s) have no gap and are not judged: the metric is undefined there (a constant "
                     f"score) or their runs are mixed.\n")
    if trailing.empty:
        return lines + [f"Every head is within {CONVEX_GAP} of the convex probe at all {len(wide)} judged task x "
                        f"model x layer cell(s).", ""]
    shown = trailing.assign(layer=trailing["layer"].astype(int))
    return lines + [f"⚠ {len(trailing)} of {len(wide)} judged task x model x layer cell(s) trail it:\n",
                    shown.round(3).to_markdown(index=False), ""]


def pairs(args, models) -> list:
    """(base, derived) pairs: from the models file's base column when given, else every pair in order."""
    if args.models:
        known = set(models)
        found = [(m.base, m.alias) for m in read_models(args.models) if m.base in known and m.alias in known]
        if found:
            return found
    return list(itertools.combinations(models, 2))


def bits_lost_lines(args, tasks, models, out, write_text, read) -> list:
    """Per task and (base, derived) pair: bits_lost_<task>_<base>_vs_<derived>.tsv (compare.bits_lost) beside the
    disagreements, and its top examples as markdown."""
    lines = []
    for task in tasks:
        for base, derived in pairs(args, models):
            for split in TASKS[task].validation_splits:
                try:
                    table = compare.bits_lost(task, read(base, task, split), read(derived, task, split),
                                              (base, derived))
                except UserError as e:
                    print(f"warning: bits lost {task}/{split} {base} -> {derived}: {e}", file=sys.stderr)
                    continue
                if table.empty:
                    continue
                name = f"bits_lost_{task}_{base}_vs_{derived}" + ("" if split == "validation" else f"_{split}")
                write_text(out / f"{name}.tsv", table.to_csv(sep="\t", index=False))
                if not table["bits_lost"].max() > 0:  # nothing to show under "where it lost the most"
                    lines += [f"#### {task} ({split}): {derived} lost no bits against {base} on any example\n",
                              f"All examples: [{name}.tsv]({name}.tsv).", ""]
                    continue
                lines += [f"#### {task} ({split}): where {derived} lost the most bits against {base}\n",
                          table.head(SHOWN_EXAMPLES).round(3).to_markdown(index=False), "",
                          f"All examples: [{name}.tsv]({name}.tsv).", ""]
    return lines


def sections(args, models, out, write_text, write_figure, read=None) -> list:
    """The report's section on how much the models know; writes summary_information.csv, fig_mdl_<task>.png and
    the bits-lost files. [] when no run has any of it. `read`: the report's predictions.Predictions (one of its own
    when None)."""
    found, _ = layout.iter_runs(args.runs)
    measures = summarize_measures(load_measures(found))
    vinfo = v_information(found)
    tasks = [t for t in TASKS if t in set(measures["task"]) | set(vinfo["task"])]
    if not tasks:
        return []
    lines = ["## How much the frozen models know\n", READING, ""]
    summaries = []
    for task in tasks:
        summary = summary_table(measures, vinfo, task, models)
        summaries.append(summary)
        lines += [f"### {task}\n", summary_markdown(summary), ""]
        if (measures.task == task).any():
            if ((measures.task == task) & (measures.measure == "compression")).any():
                write_figure(mdl_figure(measures, task, models), out / f"fig_mdl_{task}.png")
                lines += [f"![description length {task}](fig_mdl_{task}.png)\n"]
            lines += ["By layer (mean ± std over seeds):\n", layer_table(measures, task).to_markdown(index=False), ""]
    write_text(out / "summary_information.csv", pd.concat(summaries).to_csv(index=False))
    lines += bits_lost_lines(args, tasks, models, out, write_text, read or predictions.Predictions(args.runs))
    return lines


READING = (
    "codelength_kbits: the online code of the train labels, in kbits (1000 bits) (Voita & Titov 2020; blocks 0.1 … "
    "100 % of a fixed shuffle of train, each sent with a head trained on all blocks before it to convergence, "
    "early-stopped on a held-out part of them, best checkpoint kept; the protocol is in mdl.json); lower = the task "
    "is easier to extract from the layer. compression: uniform code (n·log2 K) / online code; 1 = nothing "
    "extracted. task / control / selectivity: the main metric of the run's head on validation, of the same head "
    "recipe trained on control labels (each word type a fixed random value; a text's label follows its types "
    "through the train label prior, so types seen in train carry their labels to validation and a probe scores "
    "there only by memorising them) scored on the validation control labels, and their difference (Hewitt & Liang "
    "2019). V-information: the mean over "
    "validation of PVI = log2 p_head(gold | x) − log2 p_prior(gold), in bits (Xu et al. 2020; Ethayarajh et al. "
    "2022). A derived model that keeps its base's accuracy but has a longer code, lower selectivity or fewer bits "
    "holds less of the task than the scores alone say.")

"""The report of a run tree (HELM's summarize step): mean ± std tables (md, csv, tex), figures, disagreements,
slices, significance, a comparison with published numbers, and report.md tying them together, under --out.
A pure function of the run folders: reads complete runs only (warns about the others), never writes into the runs
dir, never trains. analysis/summarize.py is its command line."""

import itertools
import platform
import sys
import time
from pathlib import Path

import pandas as pd

from frozen_glue.config.models_file import read_models
from frozen_glue.core import identity, layout, provenance
from frozen_glue.core.errors import UserError
from frozen_glue.core.tasks import TASKS
from frozen_glue.measures import diagnostics, stats
from frozen_glue.report import (
    compare,
    figures,
    information_report,
    pair_report,
    predictions,
    report_html,
    results,
    zeroshot_report,
)
from frozen_glue.report.latex import table_latex


def write_text(path, text):
    layout.atomic_write_bytes(path, text.encode())


def numeric_wide(summary, pairs):
    """summary.csv: one row per task x metric; <model>_mean/_std/_n per model; <a>-<b>_diff/_welch_p per pair."""
    # unstack, not pivot_table: it keeps a single-seed model's all-NaN std column
    table = summary.astype({"task": str}).set_index(["task", "metric", "model"])[["mean", "std", "n"]] \
        .unstack("model", sort=False)
    table.columns = [f"{model}_{stat}" for stat, model in table.columns]
    models = list(dict.fromkeys(summary["model"]))
    table = table[[f"{m}_{s}" for m in models for s in ("mean", "std", "n")]]
    for _, p in pairs.iterrows():
        table.loc[(p.task, p.metric), f"{p.model_a}-{p.model_b}_diff"] = p["diff"]
        table.loc[(p.task, p.metric), f"{p.model_a}-{p.model_b}_welch_p"] = p.welch_p
    return table.reset_index()


def reference_table(path, summary, aliases):
    """Published numbers beside ours; 'within 2 std' compares our mean with the reference mean ± 2 std.
    `aliases` maps our model aliases to the reference's model names (the models file's 5th column)."""
    try:
        ref = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise UserError(f"--reference {path} cannot be read ({e}); give a csv with model,task,metric,mean,std") \
            from None
    missing = {"model", "task", "metric", "mean", "std"} - set(ref.columns)
    if missing:
        raise UserError(f"--reference {path} lacks column(s) {sorted(missing)}; need model,task,metric,mean,std")
    ours = summary.astype({"task": str})[["model", "task", "metric", "mean", "std", "n", "debug"]].copy()
    ours.insert(0, "ours", ours["model"])
    ours["model"] = ours["model"].map(lambda m: aliases.get(m, m))
    merged = ref.merge(ours, on=["model", "task", "metric"], how="left", suffixes=("_ref", "_ours"))
    within = (merged["mean_ours"] - merged["mean_ref"]).abs() <= 2 * merged["std_ref"]
    merged["within_2std"] = within.astype("boolean").mask(merged["mean_ours"].isna())  # NA: we have no such run
    if merged["mean_ours"].isna().all():
        print(f"warning: --reference {path} names models {', '.join(dict.fromkeys(ref['model']))}, and none of "
              f"this run tree's models ({', '.join(dict.fromkeys(summary['model']))}) maps to them: put the "
              f"reference name in the 5th column of your models file and pass --models FILE", file=sys.stderr)
    return merged


def md_table(df):
    """A markdown table; missing values (NaN too) print as —."""
    if not len(df):
        return "_(none)_"
    return df.astype(object).where(df.notna(), None).to_markdown(index=False, floatfmt=".4g", missingval="—")


def layer_table(layers, task):
    """The main metric by layer, a column per model: 'mean ± std [setting]' (mixed cells say so)."""
    rows = layers[(layers.task == task) & (layers.metric == TASKS[task].main_metric)]
    cells = {(r.layer, r.model): (f"mixed: {r.mixed}" if r.mixed else f"{r['mean']:.3f}" + (
        f" ± {r['std']:.3f}" if r["std"] == r["std"] else "") + (f" [{r.setting}]" if r.setting else ""))
        for _, r in rows.iterrows()}
    models = list(dict.fromkeys(rows["model"]))
    return pd.DataFrame([{"layer": layer, **{m: cells.get((layer, m), "—") for m in models}}
                         for layer in sorted(set(rows["layer"]))])


def task_sections(args, runs, models, out) -> list:
    """Per task: the layer curve (best layer vs top, and the significance test at both), the drift curve, the
    chosen head setting and the controls; writes summary_layers.csv and the layer and drift figures."""
    found, _ = layout.iter_runs(args.runs)  # complete runs only; load_runs has named the others already
    raw_layers = results.load_layers(found)
    layers = results.summarize_layers(raw_layers)
    best = results.best_layers(layers)
    tests = results.layer_tests(raw_layers, best) if len(best) else pd.DataFrame()
    (drifts, no_drift), controls, selected = pair_report.drift_tables(args, runs), results.controls(runs), results.selections(found)
    if len(layers):
        write_text(out / "summary_layers.csv", layers.to_csv(index=False))
    lines = []
    for task in results.task_order(runs["task"]):
        part = []
        if len(layers) and task in set(layers["task"]):
            figures.write(figures.layer_figure(layers, task, models, majority=figures.main_metric_runs(runs, task)),
                         out / f"fig_layers_{task}.png")
            part += ["### Layers\n", f"![layers {task}](fig_layers_{task}.png)\n",
                     *pair_report.relative_depth_lines(layers, task, models, out)]
            part += [
                     md_table(best[best.task == task].round(4)), "",
                     "best_layer is chosen on dev (the layer with the best mean dev score), so best_mean is an "
                     "optimistic estimate of that layer; top_layer is not chosen.\n",
                     "By layer (mean ± std over seeds, and the head "
                     "setting chosen for that layer on the train hold-out when a grid was given):\n",
                     md_table(layer_table(layers, task)), ""]
            if len(tests) and task in set(tests["task"]):
                shown = tests[tests.task == task].drop(columns="task").round(4)
                shown["welch_p"] = shown["welch_p"].map(results.fmt_p)
                part += ["Welch's t-test across seeds at the top layer and at each model's best layer:\n",
                         md_table(shown), ""]
            part += information_report.layer_lines(layers, task)  # expected layer, where the curves separate
        if len(drifts) and task in set(drifts["task"]):
            rows = drifts[drifts.task == task].drop(columns="task")
            write_text(out / f"drift_{task}.csv", rows.to_csv(index=False))
            figures.write(figures.drift_figure(rows, task), out / f"fig_drift_{task}.png")
            part += ["### Representation drift\n", f"![drift {task}](fig_drift_{task}.png)\n",
                     md_table(rows.round(4)), "", *pair_report.matrix_lines(args, task, out)]
        if task in no_drift:
            part += ["Drift not computed for " + "; ".join(no_drift[task]) + "\n"]
        if len(selected) and task in set(selected["task"]):
            part += ["### Head selection\n", md_table(selected[selected.task == task].drop(columns="task")), ""]
        if len(controls) and task in set(controls["task"]):
            part += ["### Controls\n", md_table(controls[controls.task == task].drop(columns="task").round(4)), ""]
        if part:
            lines += [f"## {task}: layers, drift, head selection, controls\n", *part]
    if lines:
        lines = ["## Per task: layers, drift, head selection, controls\n",
                 "Layers: probes on every requested layer of the frozen base from the same forward pass (layer 0 = "
                 "embeddings; the top is the model's own head input); best layer by the mean main metric over seeds "
                 "(full table: [summary_layers.csv](summary_layers.csv)). Drift: debiased linear CKA between a model "
                 "and its base on the same validation rows (1 = the same representation up to rotation and scale). "
                 "Head selection: the setting chosen on a fixed hold-out cut of the train split, never validation "
                 "(`selection.json` holds the grid). Controls: always the train majority class (STS-B: its mean), "
                 "beside each model's mean; models run with `--random_init` are the no-pretraining control.\n",
                 *lines]
    return lines


def comparisons(args, runs, models, out, read):
    """Every task x validation split x pair of models, example by example (compare.disagreement), then the verdicts
    with Holm's correction across all of them; writes the disagreement and slice files. The family is read first,
    so that every bootstrap gets the resamples its size needs (stats.resamples_for); `read`: the tree's
    predictions.Predictions. Returns (the comparisons with
    verdicts, the slice tables)."""
    family = []
    if len(models) < 2:
        print("one model only: tables and figures, no comparison", file=sys.stderr)
    for task in results.task_order(runs["task"]):
        for a, b in itertools.combinations(models, 2):
            for split in TASKS[task].validation_splits:
                try:
                    pa, pb = read(a, task, split), read(b, task, split)
                    predictions.join(pa, pb, (a, b))
                except UserError as e:
                    print(f"warning: {task}/{split} {a} vs {b}: {e}", file=sys.stderr)
                    continue
                family.append((task, split, a, b, pa, pb))
    resamples = stats.resamples_for(len(family), args.n_resamples, compare.ALPHA)
    found, slice_tables = [], []
    for task, split, a, b, pa, pb in family:
        kind = identity.relation_of(pa.attrs["config"], pb.attrs["config"])
        res, table = compare.disagreement(task, pa, pb, (a, b), n_resamples=resamples)
        sl = compare.slices(task, pa, pb, (a, b), args.slice, n_resamples=min(args.n_resamples, 1000))
        suffix = ("" if len(models) == 2 else f"_{a}_vs_{b}") + ("" if split == "validation" else f"_{split}")
        write_text(out / f"disagreements_{task}{suffix}.tsv", table.to_csv(sep="\t", index=False))
        write_text(out / f"slices_{task}{suffix}.csv", sl.to_csv(index=False))
        found.append({**res, "kind": kind, "split": split, "file": f"disagreements_{task}{suffix}.tsv"})
        slice_tables.append((task, split, a, b, sl))
    dis = compare.verdicts(pd.DataFrame(found)) if found else pd.DataFrame()
    if len(dis):
        write_text(out / "disagreements.csv", dis.to_csv(index=False))
    return dis, slice_tables, family


def verdict_section(dis) -> list:
    """The report's opening: one sentence per comparison, then the table behind them."""
    if not len(dis):
        return []
    shown = dis[["task", "split", "model_a", "model_b", "kind", "metric", "difference", "ci_low", "ci_high",
                 "ci_level", "p", "p_holm", "verdict"]].copy()
    shown[["p", "p_holm"]] = shown[["p", "p_holm"]].map(results.fmt_p)
    return ["## Verdicts\n",
            f"Each comparison of two models on a task is decided example by example: the difference of their "
            f"seed-mean main metric with a bootstrap over dev examples and seeds together (both the dev set being a "
            f"sample and the seed-to-seed noise count; {int(dis['resamples'].max())} resamples, enough for this "
            f"family), Holm-corrected across the {len(dis)} comparison(s) of this report (alpha {compare.ALPHA}). "
            f"Each interval is at the level its test is decided at under Holm (ci_level), so a verdict and its "
            f"interval always agree: 'better' exactly when the interval excludes 0. 'control': the pair differs "
            f"only in --random_init.\n",
            *[f"- {compare.verdict_sentence(row)}" + (f" [{row['kind']}]" if row["kind"] else "")
              for _, row in dis.iterrows()], "", md_table(shown.round(4)), ""]


def summarize(args):
    """Everything under --out from the complete runs under --runs; report.md is written last."""
    runs_root, out = Path(args.runs).resolve(), Path(args.out).resolve()
    if out == runs_root or runs_root in out.parents:
        raise UserError(f"--out {args.out} is inside the runs dir {args.runs}; analysis never writes there, "
                        f"pick another --out such as reports/")
    layout.check_writable(out, "--out")  # before the first table: no half-written report
    runs, warnings = results.load_runs(args.runs)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    models = list(dict.fromkeys(runs["model"]))
    summary, wide, figs = write_tables(runs, models, out)
    read = predictions.Predictions(args.runs)  # each model x task x split read once for every part below
    dis, slice_tables, family = comparisons(args, runs, models, out, read)
    aliases = {m.alias: m.reference for m in read_models(args.models) if m.reference} if args.models else {}
    ref = reference_table(args.reference, summary, aliases) if args.reference else None
    if ref is not None:
        write_text(out / "reference.csv", ref.to_csv(index=False))

    described = results.adapters_of(args.runs, models, {m.alias: m.base for m in read_models(args.models)}
                                    if args.models else None)  # adapters: what B is
    report = ["# frozen-GLUE report\n", f"Runs: `{args.runs}` — {runs.groupby(['model', 'task', 'seed']).ngroups} "
              f"complete runs of {len(models)} model(s): {', '.join(models)}.\n",
              *[f"- {alias} = {text}" for alias, text in described.items()], *([""] if described else [])]
    report += verdict_section(dis)
    if warnings:
        report += ["## Warnings\n", *[f"- {w}" for w in warnings], ""]
    report += collapsed_section(runs)
    report += information_report.convex_section(args.runs)  # heads that trail a convex probe: under-trained
    report += ["## Main metric per task\n", md_table(wide), "",
               "mean ± sample std (ddof=1) over seeds; n = seeds. Differences: of the means, with Welch's t-test "
               "across seeds (seed-to-seed only: it ignores that the dev set is a sample; the verdicts above are the "
               "test to cite).",
               "Tables: [summary.md](summary.md), [summary.csv](summary.csv), [summary.tex](summary.tex).\n",
               "## Figures\n", "![summary](fig_summary.png)\n", *[f"![{f}]({f})" for f in figs], ""]
    report += task_sections(args, runs, models, out)
    report += zeroshot_report.section(args.runs, args.models, out, args.n_resamples, read)  # runs/<m>/<task>/zeroshot/
    report += information_report.sections(args, models, out, write_text, figures.write, read)  # MDL, selectivity, PVI
    report += example_sections(dis, slice_tables)
    if ref is not None:
        report += ["## Published numbers\n", f"From `{args.reference}`; within_2std: |ours − published| ≤ 2 × "
                   f"published std.\n", md_table(ref), ""]
    report += provenance_section()
    write_text(out / "report.md", "\n".join(report))
    print(f"report: {out / 'report.md'}\nreport: {report_html.write(out, args.runs, family, args.slice)}")
    return 0


def write_tables(runs, models, out):
    """summary.md/.csv/.tex, significance.csv and the per-task and summary figures. Returns (the summary, the wide
    table, the per-task figure files)."""
    summary = results.summarize(runs)
    pairs = results.pairwise(runs)
    wide = results.wide_table(summary, pairs)
    write_text(out / "summary.csv", numeric_wide(summary, pairs).to_csv(index=False))
    write_text(out / "summary.md", md_table(wide) + "\n\nmean ± sample std (ddof=1) over seeds, n = seeds; "
               "differences are model − model with Welch's t-test p across seeds (seed-to-seed only; report.md's "
               "verdicts are the example-level test); †debug = used max_*_samples; ⚠ collapsed = heads that learnt "
               "nothing (diagnostics.py); ‡control = the pair differs only in --random_init.\n")
    write_text(out / "summary.tex", table_latex(wide))  # ASCII only: compiles with pdflatex + booktabs
    write_text(out / "significance.csv", pairs.to_csv(index=False))
    figs = []
    for task in results.task_order(runs["task"]):
        figures.write(figures.task_figure(runs, task, models), out / f"fig_{task}.png")
        figs.append(f"fig_{task}.png")
    figures.write(figures.summary_figure(runs, models), out / "fig_summary.png")
    return summary, wide, figs


def collapsed_section(runs) -> list:
    """The runs whose head learnt nothing, each named by its folder."""
    dead = runs[runs["collapsed"]].drop_duplicates(["model", "task", "seed"])
    if not len(dead):
        return []
    lines = ["## Collapsed heads\n", f"{len(dead)} run(s) whose head learnt nothing (diagnostics.py): "
             f"constant predictions, or predictions no more associated with the gold labels than the "
             f"majority-class control's (a one-sided test at {diagnostics.ALPHA}). Their numbers say nothing "
             "about the model; they are marked ⚠ in the tables and drawn as red crosses. Likely causes, read from "
             "each model x task's own run settings, with the flag for each:\n"]
    for (model, task), group in dead.groupby(["model", "task"], sort=False):
        advice = diagnostics.collapse_advice_for(group["folder"].iloc[0])
        lines += [f"- {model} / {task} ({len(group)} run(s)): {advice}",
                  *[f"  - `{f}`" for f in group["folder"]]]
    return lines + [""]


def example_sections(dis, slice_tables) -> list:
    """The example-level comparison (seed votes by mean probability, McNemar / Wilcoxon) and the slices of every pair."""
    if not len(dis):
        return []
    cols = [c for c in ("task", "split", "model_a", "model_b", "n", "disagree", "a_better", "b_better", "test",
                        "test_p", "test_flag", "collapsed_a", "collapsed_b", "vote_ties_a", "vote_ties_b")
            if c in dis.columns]
    shown = dis[cols].astype({c: "Int64" for c in ("n", "disagree", "a_better", "b_better", "collapsed_a",
                                                   "collapsed_b", "vote_ties_a", "vote_ties_b") if c in cols})
    shown["test_p"] = shown["test_p"].map(results.fmt_p)
    lines = ["## Example-level comparison\n",
             "Predictions combined over seeds: the class of the highest mean probability (STS-B: mean score; "
             "vote_ties: examples whose mean probabilities tie, given to the lowest class). disagree: examples where "
             "the two predictions differ (STS-B: scores more than "
             f"{compare.STSB_DISAGREE:g} point apart on the 0-5 scale). a_better / b_better: examples only "
             "that model gets right (STS-B: where its score is closer to the gold one). Test: exact McNemar on "
             "the discordant pairs; STS-B: Wilcoxon signed-rank on the paired absolute errors (beside the "
             "primary test of the verdicts). collapsed_a / collapsed_b: collapsed heads among each model's "
             "runs; test_flag says when a test compares collapsed heads, whose p is about class biases.\n", md_table(shown), "", "Disagreeing examples: " +
             ", ".join(f"[{f}]({f})" for f in dis["file"]), ""]
    lines += ["## Slices\n", "Each slice: the verdicts' test on the slice's examples (bootstrap over its examples and "
              "both models' seeds), Holm-corrected across the pair's slices, the interval at its Holm level "
              f"(ci_level); significant first. Past tense: {compare.past_tense_method()}.\n"]
    for task, split, a, b, sl in slice_tables:
        shown = sl.astype({"n": "Int64"})
        shown[["p", "p_holm"]] = shown[["p", "p_holm"]].map(results.fmt_p)
        lines += [f"### {task} ({split}): {a} vs {b}\n", md_table(shown), ""]
    return lines


def provenance_section() -> list:
    versions = provenance.versions()
    return ["## Provenance\n", f"- command: `{' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}`",
            f"- generated: {time.strftime('%Y-%m-%d %H:%M:%S')} on {platform.node()}",
            f"- frozen-glue git commit: {provenance.git_commit()}",
            f"- versions: {', '.join(f'{k} {v}' for k, v in versions.items() if v)}", ""]

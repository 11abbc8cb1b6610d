"""The report's "prompting vs probing" section: zero-shot scores (runs/<alias>/<task>/zeroshot/) beside the probe's
mean ± std and majority control; per model, the zero-shot predictions against the probe's seed vote (mean probability) on the
same examples (2x2, exact McNemar); per base -> derived pair (the models file's 6th column), the change in probe
score next to the change in zero-shot score with a paired bootstrap CI of their difference. A pure function of the
run folders; writes its csv/tsv files into the report folder only."""

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from frozen_glue.config.models_file import read_models
from frozen_glue.core import layout
from frozen_glue.core.errors import UserError
from frozen_glue.core.metrics import get_metric
from frozen_glue.core.tasks import TASKS, get_task
from frozen_glue.measures.stats import mcnemar_exact
from frozen_glue.report import predictions
from frozen_glue.report.results import aggregate, fmt_p, load_runs, task_order


def find(runs_root):
    """({(alias, task): (config, results)} of complete zero-shot runs, warnings naming incomplete ones)."""
    found, warnings = {}, []
    for folder in sorted(Path(runs_root).glob(f"*/*/{layout.ZEROSHOT_DIR}")):
        alias, task = folder.parent.parent.name, folder.parent.name
        if task not in TASKS:
            continue
        results = layout.read_results(folder)
        if results is None:
            warnings.append(f"incomplete zero-shot run (no {layout.RESULTS_FILE}), not counted: {folder}")
            continue
        found[alias, task] = (layout.read_config(folder), results)
    return found, warnings


def zero_shot_predictions(runs_root, alias, task, split) -> pd.DataFrame:
    path = Path(runs_root) / alias / task / layout.ZEROSHOT_DIR / layout.predictions_file(split)
    if not path.is_file():
        raise UserError(f"{path} is missing: rerun the zero-shot run of {alias} on {task}")
    return pd.read_json(path, lines=True).set_index("idx")


def diff_in_differences(metric_key, probe_base, probe_derived, zs_base, zs_derived, gold, n_resamples=2000, seed=0):
    """(Δprobe − Δzero-shot, 95% low, high): Δ = metric(derived) − metric(base), the same examples resampled for
    all four prediction sets (paired bootstrap, percentile)."""
    fast = get_metric(metric_key).fast

    def stat(pb, pd_, zb, zd, g, axis=-1):
        return (fast(pd_, g) - fast(pb, g)) - (fast(zd, g) - fast(zb, g))

    data = tuple(np.asarray(x, dtype=float) for x in (probe_base, probe_derived, zs_base, zs_derived, gold))
    res = sps.bootstrap(data, stat, paired=True, vectorized=True, n_resamples=n_resamples, method="percentile",
                        rng=np.random.default_rng(seed), batch=500)
    return float(stat(*data)), float(res.confidence_interval.low), float(res.confidence_interval.high)


def scores(runs, found) -> pd.DataFrame:
    """One row per model x task x split: the probe's mean ± std over seeds, the majority control, zero-shot and its
    calibrated variant (main metric), and the prompt hash."""
    rows = []
    for (alias, name), (config, res) in sorted(found.items()):
        task = get_task(name)
        for split in task.validation_splits:
            metric = task.main_metric + task.metric_suffix(split)
            probe = runs[(runs.model == alias) & (runs.task == name) & (runs.metric == metric)]
            cell = aggregate(probe, ["model"]).iloc[0] if len(probe) else None  # the tables' one aggregation
            mean, std, n = (None, None, 0) if cell is None else (cell["mean"], cell["std"], cell["n"])
            rows.append({"model": alias, "task": name, "split": split, "metric": metric,
                         "probe_mean": None if mean is None or np.isnan(mean) else mean,
                         "probe_std": None if std is None or np.isnan(std) else std, "probe_n": n,
                         "probe_mixed": "" if cell is None else cell["mixed"],
                         "majority": res.get(f"eval_majority_{metric}"), "zero_shot": res.get(f"eval_{metric}"),
                         "zero_shot_calibrated": res.get(f"eval_calibrated_{metric}"),
                         "prompt_hash": (config.get("prompt_hash") or {}).get(split),
                         "zero_shot_collapsed": bool(res.get("head_collapsed"))})
    return pd.DataFrame(rows)


def against_probe(runs_root, alias, task, split, read):
    """(2x2 row, disagreeing examples, joined frame) of one model's zero-shot vs its probe's seed vote."""
    vote = read(alias, task.name, split)
    zs = zero_shot_predictions(runs_root, alias, task.name, split)
    vote, zs = predictions.join(vote, zs, (f"{alias} probe", f"{alias} zero-shot"))
    gold = vote["label"].to_numpy()
    probe_ok, prompt_ok = vote["prediction"].to_numpy() == gold, zs["prediction"].to_numpy() == gold
    only_probe, only_prompt = int(np.sum(probe_ok & ~prompt_ok)), int(np.sum(prompt_ok & ~probe_ok))
    row = {"task": task.name, "split": split, "model": alias, "n": len(gold),
           "both_right": int(np.sum(probe_ok & prompt_ok)), "probe_only": only_probe, "prompt_only": only_prompt,
           "both_wrong": int(np.sum(~probe_ok & ~prompt_ok)), "mcnemar_p": mcnemar_exact(only_probe, only_prompt)}
    differ = probe_ok != prompt_ok
    text = vote[list(task.text_keys)].astype(str).agg(" || ".join, axis=1)
    examples = pd.DataFrame({"task": task.name, "split": split, "model": alias, "idx": vote.index[differ],
                             "label": gold[differ], "probe": vote["prediction"].to_numpy()[differ],
                             "prompt": zs["prediction"].to_numpy()[differ],
                             "right": np.where(probe_ok[differ], "probe right, prompt wrong",
                                               "prompt right, probe wrong"), "text": text.to_numpy()[differ]})
    return row, examples, pd.DataFrame({"gold": gold, "probe": vote["prediction"].to_numpy(),
                                        "prompt": zs["prediction"].to_numpy()}, index=vote.index)


def pair_row(task, split, base, derived, joined, found, n_resamples):
    """Δprobe vs Δzero-shot of one base -> derived pair, or a refusal when the prompts differ."""
    hashes = [(found[m, task.name][0].get("prompt_hash") or {}).get(split) for m in (base, derived)]
    row = {"task": task.name, "split": split, "base": base, "derived": derived}
    if hashes[0] != hashes[1]:
        return {**row, "refused": f"prompt hashes differ ({hashes[0]} vs {hashes[1]}): the two zero-shot runs used "
                                  f"different prompts (another lm-eval version?); rerun one of them"}
    chat = [found[m, task.name][0].get("chat_template") for m in (base, derived)]
    if bool(chat[0]) != bool(chat[1]):
        return {**row, "refused": f"only {(base, derived)[bool(chat[1])]} was scored with its chat template "
                                  f"(--zero_shot_chat_template): score both plainly, or both with their templates"}
    b, d = joined[base], joined[derived]
    if set(b.index) != set(d.index) or not np.array_equal(b["gold"], d.loc[b.index, "gold"]):
        return {**row, "refused": "the two models' runs cover different examples or gold labels"}
    d = d.loc[b.index]
    metric = task.main_metric
    fast = get_metric(metric).fast
    gold = b["gold"].to_numpy(dtype=float)
    delta = {k: float(fast(d[k].to_numpy(float), gold) - fast(b[k].to_numpy(float), gold)) for k in ("probe", "prompt")}
    diff, low, high = diff_in_differences(metric, b["probe"], d["probe"], b["prompt"], d["prompt"], gold, n_resamples)
    return {**row, "metric": metric, "delta_probe": delta["probe"], "delta_zero_shot": delta["prompt"],
            "difference": diff, "ci_low": low, "ci_high": high, "refused": None}


def comparisons(runs_root, found, models_file, n_resamples, read):
    """(2x2 rows, disagreeing examples, pair rows, warnings) over every task with zero-shot runs."""
    bases = {m.alias: m.base for m in read_models(models_file)} if models_file else {}
    tables, examples, pairs, warnings = [], [], [], []
    for name in task_order({t for _, t in found}):
        task = get_task(name)
        for split in task.validation_splits:
            joined = {}
            for alias in sorted(a for a, t in found if t == name):
                try:
                    row, ex, joined[alias] = against_probe(runs_root, alias, task, split, read)
                except UserError as e:
                    warnings.append(f"zero-shot vs probe, {alias} {name}/{split}: {e}")
                    continue
                tables.append(row)
                examples.append(ex)
            for derived, base in bases.items():
                if base and base in joined and derived in joined:
                    pairs.append(pair_row(task, split, base, derived, joined, found, n_resamples))
    return (pd.DataFrame(tables), pd.concat(examples, ignore_index=True) if examples else pd.DataFrame(),
            pd.DataFrame(pairs), warnings)


def _md(df):
    if not len(df):
        return "_(none)_"
    return df.astype(object).where(df.notna(), None).to_markdown(index=False, floatfmt=".4g", missingval="—")


def section(runs_root, models_file, out, n_resamples=2000, read=None) -> list:
    """The report's markdown lines (none without zero-shot runs); writes zeroshot.csv, zeroshot_vs_probe.csv,
    zeroshot_pairs.csv and disagreements_zeroshot.tsv into `out`. `read`: the report's predictions.Predictions (one of
    its own when None)."""
    found, warnings = find(runs_root)
    if not found:
        return ["## Prompting vs probing\n", *[f"- warning: {w}" for w in warnings], ""] if warnings else []
    try:
        runs, _ = load_runs(runs_root)
    except UserError:  # zero-shot runs only: no probe yet
        runs = pd.DataFrame(columns=["model", "task", "metric", "value"])
    table = scores(runs, found)
    two_by_two, examples, pairs, more = comparisons(runs_root, found, models_file, n_resamples,
                                                    read or predictions.Predictions(runs_root))
    out = Path(out)
    for name, frame in (("zeroshot.csv", table), ("zeroshot_vs_probe.csv", two_by_two),
                        ("zeroshot_pairs.csv", pairs)):
        layout.atomic_write_bytes(out / name, frame.to_csv(index=False).encode())
    layout.atomic_write_bytes(out / "disagreements_zeroshot.tsv", examples.to_csv(sep="\t", index=False).encode())
    shown = table.assign(probe=[f"mixed, not averaged: {x} (n={n})" if x else
                                f"{m:.4f} ± {s:.4f} (n={n})" if pd.notna(s) else
                                f"{m:.4f} (n={n})" if pd.notna(m) else "—"
                                for m, s, n, x in zip(table.probe_mean, table.probe_std, table.probe_n,
                                                      table.probe_mixed)])
    shown = shown[["task", "split", "model", "metric", "probe", "majority", "zero_shot", "zero_shot_calibrated",
                   "zero_shot_collapsed", "prompt_hash"]]
    lines = ["## Prompting vs probing\n",
             "Zero-shot: lm-eval's GLUE prompt for the task scored on each model's own causal-LM head, on the same "
             "validation rows as the probe (`runs/<model>/<task>/zeroshot/`); the prediction is the answer with the "
             "highest summed log-likelihood. *Calibrated* (label-free): each answer's log-likelihood minus its mean "
             "over the split before the argmax. Majority: always the train majority class.\n", _md(shown.round(4)),
             "", "Zero-shot vs the probe's seed vote (mean probability) on the same examples (exact McNemar on the "
             "discordant pairs):\n", _md(two_by_two.assign(mcnemar_p=two_by_two["mcnemar_p"].map(fmt_p)))
             if len(two_by_two) else "_(no probe runs)_", ""]
    if len(pairs):
        ok = pairs[pairs["refused"].isna()].drop(columns="refused") if "refused" in pairs else pairs
        lines += ["Base → derived: the change in probe score (seed vote) next to the change in zero-shot "
                  "score, and a paired bootstrap 95% CI of Δprobe − Δzero-shot over examples. A CI above 0: "
                  "specializing cost the prompt more than the probe (the information is there, the way to reach it "
                  "by prompting is not).\n", _md(ok.round(4)), ""]
        lines += [f"- refused: {r.base} → {r.derived} ({r.task}/{r.split}): {r.refused}"
                  for r in pairs.itertuples() if isinstance(r.refused, str)]
    lines += [f"- warning: {w}" for w in warnings + more]
    lines += ["", "Examples where the probe is right and the prompt wrong (and back): "
                  "[disagreements_zeroshot.tsv](disagreements_zeroshot.tsv).", ""]
    return lines

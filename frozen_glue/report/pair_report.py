"""The one-pair reports behind analysis/disagreements.py (two models on one task, example by example) and
analysis/drift.py (a model against its base, layer by layer). Pure functions of the run folders or the feature
cache; they write under --out only and never train."""

import json
import sys
from pathlib import Path

import pandas as pd

from frozen_glue.config.models_file import read_models
from frozen_glue.core import identity, layout
from frozen_glue.core.errors import UserError
from frozen_glue.core.tasks import get_task
from frozen_glue.report import compare, drift, figures, predictions, results


def disagreements(args):
    """Prints the contingency, McNemar, the bootstrap CI and the slices; writes disagreements_<task>.tsv and
    slices_<task>.csv under args.out."""
    task = get_task(args.task)
    split = args.split or task.validation_splits[0]
    if split not in task.validation_splits:
        raise UserError(f"--split {split}: {task.name} has {', '.join(task.validation_splits)}")
    a, b = args.models
    pa = predictions.read_predictions(args.runs, a, task.name, split, seed=args.seed)
    pb = predictions.read_predictions(args.runs, b, task.name, split, seed=args.seed)
    kind = identity.relation_of(pa.attrs["config"], pb.attrs["config"])
    if kind:
        print(f"note: {a} vs {b}: {kind}", file=sys.stderr)
    result, table = compare.disagreement(task.name, pa, pb, (a, b), n_resamples=args.n_resamples)
    sl = compare.slices(task.name, pa, pb, (a, b), args.slice)
    out = Path(args.out)
    suffix = "" if split == "validation" else f"_{split}"
    layout.atomic_write_bytes(out / f"disagreements_{task.name}{suffix}.tsv",
                              table.to_csv(sep="\t", index=False).encode())
    layout.atomic_write_bytes(out / f"slices_{task.name}{suffix}.csv", sl.to_csv(index=False).encode())
    how = f"seed {args.seed}" if args.seed is not None else "mean probability over seeds"
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


def base_pairs(known: dict) -> list:
    """(base, derived) for every model of a models file ({alias: Model}) that names its base (6th column)."""
    return [(known[m.base], m) for m in known.values() if m.base]


def drift_pairs(models, models_file):
    """(base, derived) pairs: the two named models, or every model of the models file with a base."""
    known = {m.alias: m for m in read_models(models_file)} if Path(models_file).is_file() else {}
    if models:
        return [tuple(known.get(name, name) for name in models)]
    pairs = base_pairs(known)
    if not pairs:
        raise UserError(f"{models_file} declares no base (6th column); pass --models BASE DERIVED")
    return pairs


def drift_report(args):
    """CKA by layer of each pair; writes drift_<task>.csv and fig_drift_<task>.png under args.out."""
    task = get_task(args.task)
    if not Path(args.feature_cache).is_dir():
        raise UserError(f"--feature_cache {args.feature_cache} does not exist; give the dir your runs cached into")
    pairs = drift_pairs(args.models, args.models_file)
    table = pd.concat([drift.layer_drift(args.feature_cache, task.name, a, b) for a, b in pairs], ignore_index=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    layout.atomic_write_bytes(out / f"drift_{task.name}.csv", table.to_csv(index=False).encode())
    figures.write(figures.drift_figure(table, task.name), out / f"fig_drift_{task.name}.png")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"written: {out / f'drift_{task.name}.csv'}, {out / f'fig_drift_{task.name}.png'}")
    for a, b in pairs:  # different depths: every layer against every layer
        if drift.depths_differ(args.feature_cache, task.name, a, b):
            matrix = drift.cka_matrix(args.feature_cache, task.name, a, b)
            name = f"drift_matrix_{task.name}_{getattr(a, 'alias', a)}_vs_{getattr(b, 'alias', b)}"
            layout.atomic_write_bytes(out / f"{name}.csv", matrix.to_csv().encode())
            figures.write(figures.matrix_figure(matrix, task.name), out / f"fig_{name}.png")
            print(matrix.round(4).to_string())
            print(f"written: {out / f'{name}.csv'}, {out / f'fig_{name}.png'}")
    return 0


def drift_tables(args, runs):
    """(CKA by layer of every model of --models with a base, against it, per task (needs --feature_cache);
    {task: why a pair's drift is missing}, so that the report says so instead of leaving it out)."""
    if not (args.feature_cache and args.models):
        return pd.DataFrame(), {}
    known = {m.alias: m for m in read_models(args.models)}
    tables, missing = [], {}
    for task in results.task_order(runs["task"]):
        for base, m in base_pairs(known):
            try:
                tables.append(drift.layer_drift(args.feature_cache, task, base, m).assign(task=task))
            except UserError as e:
                print(f"warning: drift {task} {m.base} -> {m.alias}: {e}", file=sys.stderr)
                missing.setdefault(task, []).append(f"{m.base} -> {m.alias}: {e}")
    return (pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()), missing


def matrix_lines(args, task, out) -> list:
    """Per pair of different depths (a distilled student): the layer x layer CKA matrix as
    drift_matrix_<task>_<base>_vs_<derived>.csv and its heatmap, and the report's lines about them."""
    lines = []
    known = {m.alias: m for m in read_models(args.models)}
    for base, m in base_pairs(known):
        try:
            if not drift.depths_differ(args.feature_cache, task, base, m):
                continue
            matrix = drift.cka_matrix(args.feature_cache, task, base, m)
        except UserError:
            continue  # drift_tables has said why
        name = f"drift_matrix_{task}_{base.alias}_vs_{m.alias}"
        layout.atomic_write_bytes(Path(out) / f"{name}.csv", matrix.to_csv().encode())
        figures.write(figures.matrix_figure(matrix, task), Path(out) / f"fig_{name}.png")
        lines += [f"{base.alias} and {m.alias} differ in depth: every layer against every layer (rows: "
                  f"{base.alias}, columns: {m.alias}; [{name}.csv]({name}.csv)), no layer paired by index:\n",
                  f"![{name}](fig_{name}.png)\n"]
    return lines


def relative_depth_lines(layers, task, models, out) -> list:
    """When the models of a task's layer curves differ in depth: the same curves on relative depth (layer / the
    model's top layer), fig_layers_<task>_relative.png, and its line."""
    rows = layers[layers.task == task]
    if rows.groupby("model")["layer"].max().nunique() < 2:
        return []
    figures.write(figures.layer_figure(layers, task, models, relative=True), Path(out) / f"fig_layers_{task}_relative.png")
    return [f"The models differ in depth: the same curves on relative depth (layer / top layer): "
            f"![relative depth {task}](fig_layers_{task}_relative.png)\n"]

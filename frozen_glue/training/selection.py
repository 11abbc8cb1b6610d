"""Fair head selection: a fixed, stratified hold-out cut of the train split, and the choice of the head setting
(learning rate x weight decay) with the best mean hold-out main metric over seeds. Never looks at validation.
Must not build or train heads itself (runners.py does, every setting x seed in one stacked loop)."""

import itertools

import numpy as np
from sklearn.model_selection import train_test_split

from frozen_glue.core.errors import UserError
from frozen_glue.core.metrics import get_metric
from frozen_glue.core.tasks import compute_metrics

HOLDOUT_SEED = 0  # the cut is the same for every seed and every model: settings are compared on the same rows


def holdout_split(labels, fraction, regression):
    """(fit rows, hold-out rows) of the train split: `fraction` held out, stratified by class (STS-B: by the
    integer part of the score), the same cut every time."""
    labels = np.asarray(labels)
    strata = np.floor(labels).astype(int) if regression else labels
    if len(labels) * fraction < len(np.unique(strata)):
        raise UserError(f"--selection_fraction {fraction} holds out {int(len(labels) * fraction)} of {len(labels)} "
                        f"train rows, fewer than the {len(np.unique(strata))} classes; raise it or use more rows")
    fit, hold = train_test_split(np.arange(len(labels)), test_size=fraction, stratify=strata,
                                 random_state=HOLDOUT_SEED)
    return np.sort(fit), np.sort(hold)


def grid(study_args, training_args):
    """Every (learning rate, weight decay) to try, in the order given."""
    rates = study_args.head_learning_rates or [training_args.learning_rate]
    decays = study_args.head_weight_decays or [training_args.weight_decay]
    return list(itertools.product(rates, decays))


def select(task, predictions, hold_labels) -> dict:
    """The setting with the best mean hold-out main metric over seeds (ties: the first in grid order), from
    {(lr, wd): {seed: hold-out predictions}}. Returns what selection.json records."""
    metric = get_metric(task.main_metric)
    rows = []
    for (lr, wd), by_seed in predictions.items():
        scores = {seed: compute_metrics(task, p, hold_labels)[task.main_metric] for seed, p in by_seed.items()}
        rows.append({"learning_rate": lr, "weight_decay": wd, "scores": scores,
                     "mean": float(np.mean(list(scores.values())))})
    best = rows[0]
    for row in rows[1:]:
        if metric.better(row["mean"], best["mean"]) or (np.isnan(best["mean"]) and not np.isnan(row["mean"])):
            best = row
    return {"metric": task.main_metric, "higher_is_better": metric.higher_is_better, "grid": rows,
            "chosen": {"learning_rate": best["learning_rate"], "weight_decay": best["weight_decay"]}}

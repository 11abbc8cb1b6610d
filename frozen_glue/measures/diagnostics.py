"""Is a trained head dead? A frozen head can learn nothing (a learning rate too small or too large, clipping too
tight) and still produce a number that reads like a model difference. Pure functions of a split's outputs; they
must not change any metric, only say whether to trust it."""

import math
import warnings
from pathlib import Path

import numpy as np
from scipy import stats as sps
from sklearn.metrics import confusion_matrix, matthews_corrcoef

from frozen_glue.core import layout
from frozen_glue.core.tasks import compute_metrics
from frozen_glue.measures.information import CONVEX_GAP

ALPHA = 0.05      # a head whose association with the gold labels is not significant at this level learnt nothing
FLAT = 0.05       # STS-B: scores whose spread is under this share of the gold scores' spread are constant


def association_p(task, predictions, labels) -> tuple:
    """(statistic, one-sided p) of 'the predictions are associated with the gold labels', which the majority-class
    control (a constant) never is. Binary: MCC, p = P(Z > MCC·sqrt(n)) (n·MCC² is the 2x2 table's chi-square
    statistic), so p falls as MCC rises: of two heads on the same rows the better one never has the larger p.
    Several classes: Cramér's chi-square test of independence of the confusion table. STS-B: Pearson r, the
    t-test of r > 0."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    n = len(labels)
    if task.is_regression:
        r, p = sps.pearsonr(predictions, labels, alternative="greater")
        return float(r), float(p)
    mcc = float(matthews_corrcoef(labels, predictions))
    if task.num_labels == 2:
        return mcc, float(sps.norm.sf(mcc * math.sqrt(n)))
    table = confusion_matrix(labels, predictions)
    table = table[table.sum(1) > 0][:, table.sum(0) > 0]
    return mcc, float(sps.chi2_contingency(table, correction=False).pvalue) if mcc > 0 else 1.0


def collapse_reason(task, logits, labels) -> str | None:
    """Why the head's validation outputs show it learnt nothing, or None. Collapsed: constant predictions (one
    class; STS-B: scores that vary by less than FLAT of the gold scores' spread), or predictions indistinguishable
    from the majority-class control, i.e. not significantly associated with the gold labels (association_p >=
    ALPHA). A head a hair worse than the label prior in loss but clearly associated with the labels is not
    collapsed."""
    logits, labels = np.asarray(logits, dtype=float), np.asarray(labels)
    if task.is_regression:
        scores = logits.reshape(-1)
        spread, gold = float(np.std(scores)), float(np.std(labels))
        if spread <= FLAT * gold:
            return f"the validation scores are constant (spread {spread:.3g}, under {FLAT:.0%} of the gold's {gold:.3g})"
        r, p = association_p(task, scores, labels)
        if p >= ALPHA:
            return f"validation Pearson r {r:.3f} is not significantly above 0 (one-sided p {p:.3g})"
        return None
    predictions = logits.argmax(-1)
    if len(set(predictions.tolist())) == 1:
        return f"every validation prediction is class {int(predictions[0])} ({task.label_names[predictions[0]]})"
    mcc, p = association_p(task, predictions, labels)
    if p >= ALPHA:
        return (f"validation predictions are not significantly associated with the gold labels (MCC {mcc:.3f}, "
                f"one-sided p {p:.3g}): no better than the majority-class control")
    return None


def majority_baseline(task, train_labels, labels, suffix="") -> dict:
    """The control every score is read against: always predicting the train split's majority class (ties: the
    lowest class id; STS-B: its mean score), scored like a model. {"eval_majority_<metric>": value}; None where the
    metric is undefined for a constant prediction (Pearson/Spearman of one score)."""
    train_labels = np.asarray(train_labels)
    if task.is_regression:
        constant = float(np.mean(train_labels))
    else:
        constant = int(np.bincount(train_labels.astype(int), minlength=task.num_labels).argmax())
    with warnings.catch_warnings():  # sklearn/scipy warn about constant predictions: the point of a baseline
        warnings.simplefilter("ignore")
        scores = compute_metrics(task, np.full(len(labels), constant), labels)
    return {f"eval_majority_{k}{suffix}": None if math.isnan(v) else v for k, v in scores.items()}


def collapse_advice(config: dict, results: dict, selection: dict | None = None, convex: dict | None = None) -> str:
    """What most likely kept a collapsed head at the prior, read from its own run (config.json, all_results.json,
    selection.json, convex.json), each cause with the flag that addresses it; never a flag the run already used.
    One line."""
    args = config.get("args", {})
    study, training, data = args.get("study", {}), args.get("training", {}), args.get("data", {})
    cached = config.get("path") == "cached"
    causes = []
    layers = (convex or {}).get("layers") or {}
    top = max(layers, key=int, default=None)
    cell = layers.get(top, {})
    if cell.get("gap") is not None and cell["gap"] <= CONVEX_GAP:  # the convex probe does no better: the features
        causes.append(f"a convex probe on the same features scores {cell['convex']:.3f} against the head's "
                      f"{cell['head']:.3f} (convex.json, layer {top}): the features hold little of this task at "
                      f"these rows, not the head; more train rows or another layer (--probe_layers all)")
    if (config.get("pooling") or {}).get("rule") == "pooler" and study.get("pooling", "auto") == "auto":
        causes.append("the head reads the pooler output, which a sentence encoder was never trained to produce: "
                      "--pooling mean" + ("" if cached else " (with --feature_cache DIR)"))
    if not study.get("standardize_features") and study.get("probe", "head") == "head":
        causes.append("raw feature scale (features that vary little around a large mean keep an AdamW head at the "
                      "prior): --standardize_features" + ("" if cached else " with --feature_cache DIR"))
    rates = study.get("head_learning_rates") or []
    chosen = (selection or {}).get("chosen", {}).get("learning_rate")
    if rates and chosen is not None and len(rates) > 1 and chosen in (min(rates), max(rates)):
        side = "above" if chosen == max(rates) else "below"
        causes.append(f"the chosen learning rate {chosen:g} is the edge of the grid: extend --head_learning_rates "
                      f"{side} it")
    elif not rates and study.get("probe", "head") == "head":
        causes.append(f"one learning rate ({training.get('learning_rate', '?')}) was tried: a grid chosen on a train "
                      f"hold-out, --head_learning_rates 1e-4 1e-3 1e-2 1e-1" + ("" if cached else
                                                                              " (with --feature_cache DIR)"))
    epochs = training.get("num_train_epochs")
    if epochs is not None and epochs < 10 and not training.get("max_steps", -1) > 0:
        causes.append(f"{epochs:g} epoch(s): --num_train_epochs 10")
    rows = results.get("train_samples")
    if rows is not None and rows < 1000:
        causes.append(f"only {rows} train rows" + (f" (--max_train_samples {data['max_train_samples']}): raise it"
                                                   if data.get("max_train_samples") else ""))
    return "; ".join(causes) if causes else "no cause this tool can name from the run's settings"


def collapse_advice_for(folder) -> str:
    """collapse_advice of a run folder's own files."""
    return collapse_advice(layout.read_config(folder), layout.read_results(folder) or {},
                           layout.read_json(Path(folder) / layout.SELECTION_FILE),
                           layout.read_json(Path(folder) / layout.CONVEX_FILE))

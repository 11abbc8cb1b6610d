"""Is a trained head dead? A frozen head can learn nothing (a learning rate too small or too large, clipping too
tight) and still produce a number that reads like a model difference. Pure functions of a split's outputs; they
must not change any metric, only say whether to trust it."""

import math
import warnings

import numpy as np
from scipy.special import log_softmax

from .tasks import compute_metrics


def collapse_reason(task, logits, labels, train_labels=None) -> str | None:
    """Why the head's validation outputs show it learnt nothing, or None. Collapsed: every prediction the same
    class (STS-B: one constant score), or a loss no better than always predicting the train split's label
    prior (STS-B: its mean score)."""
    logits, labels = np.asarray(logits, dtype=float), np.asarray(labels)
    if task.is_regression:
        scores = logits.reshape(-1)
        if np.ptp(scores) <= 1e-6 * max(1.0, float(np.abs(scores).max())):
            return f"every validation score is {scores[0]:.4g}"
        if train_labels is not None:
            mse = float(np.mean((scores - labels) ** 2))
            prior = float(np.mean((float(np.mean(train_labels)) - labels) ** 2))
            if mse >= prior:
                return f"validation MSE {mse:.4g} is no better than predicting the train mean ({prior:.4g})"
        return None
    predictions = logits.argmax(-1)
    if len(set(predictions.tolist())) == 1:
        return f"every validation prediction is class {int(predictions[0])} ({task.label_names[predictions[0]]})"
    if train_labels is not None:
        loss = float(-np.mean(log_softmax(logits, axis=-1)[np.arange(len(labels)), labels]))
        counts = np.bincount(np.asarray(train_labels, dtype=int), minlength=task.num_labels) + 1e-12
        prior = float(-np.mean(np.log(counts / counts.sum())[labels]))
        if loss >= prior:
            return (f"validation loss {loss:.4g} is no better than always predicting the train label prior "
                    f"({prior:.4g})")
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

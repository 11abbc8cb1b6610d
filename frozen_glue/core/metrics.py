"""The metric registry: every GLUE metric once — its upstream key, the name tables and figures print, which
direction is better, the scikit-learn/scipy score the runs report, and a vectorized form for the bootstrap's
thousands of resamples. Must not know tasks (tasks.py picks each task's metrics and main metric) or runs."""

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats as sps
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

MISMATCHED = "_mm"  # upstream's suffix for MNLI mismatched (eval_accuracy_mm)


# Vectorized forms over the last axis (sklearn's versions cost ~3 ms a call in input checks alone);
# tests/test_analysis.py checks them against sklearn/scipy on random inputs and on hand-computed cases.
def _accuracy(pred, gold):
    return np.mean(pred == gold, axis=-1)


# Each form's only division by zero is 0/0 (no true positive and no error; a constant prediction or gold), which
# numpy flags as "invalid": that is the one warning silenced, and the guard picks the library's answer for it.
def _f1(pred, gold):
    tp = np.sum((pred == 1) & (gold == 1), axis=-1)
    wrong = np.sum(pred != gold, axis=-1)
    with np.errstate(invalid="ignore"):
        return np.where(tp > 0, 2 * tp / (2 * tp + wrong), 0.0)  # no true positive: F1 = 0 (sklearn's 0/0 too)


def _mcc(pred, gold):
    classes = np.union1d(np.unique(pred), np.unique(gold))
    n = pred.shape[-1]
    p_k = np.stack([np.sum(pred == k, axis=-1) for k in classes], -1)  # counts: exact integers up to the sqrt
    t_k = np.stack([np.sum(gold == k, axis=-1) for k in classes], -1)
    correct = np.sum(pred == gold, axis=-1)
    num = correct * n - np.sum(p_k * t_k, -1)
    den = np.sqrt((n * n - np.sum(p_k ** 2, -1)) * (n * n - np.sum(t_k ** 2, -1)))
    with np.errstate(invalid="ignore"):
        return np.where(den != 0, num / den, 0.0)  # a constant side: MCC = 0, as sklearn says


def _pearson(pred, gold):
    pred = pred - pred.mean(-1, keepdims=True)
    gold = gold - gold.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore"):  # a constant side: NaN, as scipy says
        return np.sum(pred * gold, -1) / np.sqrt(np.sum(pred ** 2, -1) * np.sum(gold ** 2, -1))


def _spearman(pred, gold):
    return _pearson(sps.rankdata(pred, axis=-1), sps.rankdata(gold, axis=-1))


@dataclass(frozen=True)
class Metric:
    key: str                       # upstream's name: eval_<key> in all_results.json
    display: str                   # what tables and figures print
    higher_is_better: bool
    score: Callable                # (predictions, labels) -> float, the library's implementation
    fast: Callable | None = None   # vectorized over the last axis (bootstrap); None: no per-example form

    def better(self, a, b) -> bool:
        """Is score a strictly better than score b?"""
        return a > b if self.higher_is_better else a < b


METRICS = {m.key: m for m in [
    Metric("matthews_correlation", "Matthews correlation", True, lambda p, g: matthews_corrcoef(g, p), _mcc),
    Metric("accuracy", "accuracy", True, lambda p, g: accuracy_score(g, p), _accuracy),
    Metric("f1", "F1", True, lambda p, g: f1_score(g, p), _f1),
    Metric("pearson", "Pearson r", True, lambda p, g: sps.pearsonr(p, g)[0], _pearson),
    Metric("spearmanr", "Spearman ρ", True, lambda p, g: sps.spearmanr(p, g)[0], _spearman),
    Metric("combined_score", "combined score", True, None),  # mean of a task's metrics (MRPC, QQP, STS-B)
    Metric("loss", "loss", False, None),
]}


def get_metric(key: str) -> Metric:
    """The registry entry of a reported key (MNLI mismatched keys carry _mm)."""
    return METRICS[key.removesuffix(MISMATCHED)]


def display_name(key: str) -> str:
    """How a reported key is printed: 'accuracy (mismatched)' for accuracy_mm."""
    metric = METRICS.get(key.removesuffix(MISMATCHED))
    name = metric.display if metric else key.removesuffix(MISMATCHED)
    return f"{name} (mismatched)" if key.endswith(MISMATCHED) else name

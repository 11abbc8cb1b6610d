"""How much task information a frozen model holds, beside how well a head scores: one pure function per measure.
Online-code MDL (Voita & Titov, 2020), control labels for selectivity (Hewitt & Liang, 2019), pointwise
V-information (Xu et al., 2020; Ethayarajh et al., 2022), and where in the layers a score lives (Tenney et al.,
2019). Must not train heads (information_probes.py does) nor read runs (information_report.py does)."""

import hashlib
import math

import numpy as np
from scipy.special import log_softmax

# Voita & Titov's block boundaries, in % of the train rows: the first block is sent with the uniform code, each
# next one with a head trained on everything before it
MDL_BLOCKS_PERCENT = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25, 50, 100)
# one shuffle of train for every seed and layer, so that they encode the same blocks in the same order (the seeds
# then differ by head init and batch order only) and all heads of a block train in one stacked loop
MDL_SHUFFLE_SEED = 0
LN2 = math.log(2)


def mdl_order(n: int, seed: int = MDL_SHUFFLE_SEED) -> np.ndarray:
    """The fixed transmission order of the train rows."""
    return np.random.default_rng(seed).permutation(n)


def block_ends(n: int, percents=MDL_BLOCKS_PERCENT) -> list:
    """Row counts at which each block ends, ascending and distinct; at least one row in the first block (a small
    train split merges the boundaries that fall on the same row)."""
    ends = sorted({min(n, max(1, int(n * p / 100))) for p in percents} | {n})
    return ends


def uniform_codelength(n: int, num_classes: int) -> float:
    """Bits to send n labels with no model at all: n * log2(K)."""
    return n * math.log2(num_classes)


def codelength_bits(logits, labels) -> float:
    """Bits to send `labels` with the head's predictive distribution: sum of -log2 p(gold | x)."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64), axis=-1)
    return float(-logp[np.arange(len(labels)), np.asarray(labels, dtype=int)].sum() / LN2)


def online_codelength(ends, num_classes: int, block_bits) -> dict:
    """The online code: the first block (ends[0] rows) with the uniform code, then `block_bits[i]` for the rows
    ends[i]..ends[i+1]. Codelength and uniform codelength in kbits (1000 bits), compression = uniform / online."""
    if len(block_bits) != len(ends) - 1:
        raise ValueError(f"{len(ends) - 1} blocks after the first, {len(block_bits)} codelengths")
    first = uniform_codelength(ends[0], num_classes)
    online = first + float(sum(block_bits))
    uniform = uniform_codelength(ends[-1], num_classes)
    return {"codelength_kbits": online / 1000, "uniform_kbits": uniform / 1000,
            "compression": uniform / online if online > 0 else None,
            "block_kbits": [first / 1000] + [b / 1000 for b in block_bits]}


def text_uniform(text: str) -> float:
    """A number in [0, 1) fixed by the text alone (sha256): what no model can know about the text."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2 ** 64


def control_labels(texts, train_labels, regression: bool) -> np.ndarray:
    """Control-task labels (Hewitt & Liang): each text's hash number through the train labels' quantile function,
    so the labels keep the train label prior (STS-B: the train score distribution) but follow nothing a model
    reads in the text."""
    u = np.array([text_uniform(t) for t in texts])
    labels = np.quantile(np.asarray(train_labels, dtype=float), u, method="inverted_cdf")
    return labels if regression else labels.astype(int)


def label_prior(train_labels, num_classes: int) -> np.ndarray:
    """The train split's class frequencies (a class never seen in train gets a tiny mass, not zero)."""
    counts = np.bincount(np.asarray(train_labels, dtype=int), minlength=num_classes) + 1e-12
    return counts / counts.sum()


def pvi_bits(logits, labels, prior) -> np.ndarray:
    """Pointwise V-information per example: log2 p_head(gold | x) - log2 p_prior(gold), in bits. Positive: the
    head's input made the gold label easier to predict than the label prior alone."""
    labels = np.asarray(labels, dtype=int)
    logp = log_softmax(np.asarray(logits, dtype=np.float64), axis=-1)[np.arange(len(labels)), labels]
    return (logp - np.log(np.asarray(prior, dtype=np.float64)[labels])) / LN2


def expected_layer(layers, scores):
    """The score-weighted centre of gravity of a layer curve above its lowest layer's score (Tenney et al.):
    sum_l l * max(0, s_l - s_0) / sum_l max(0, s_l - s_0); None when no layer beats the lowest one."""
    layers, scores = np.asarray(layers, dtype=float), np.asarray(scores, dtype=float)
    order = np.argsort(layers)
    layers, scores = layers[order], scores[order]
    gain = np.clip(np.nan_to_num(scores - scores[0], nan=0.0), 0, None)
    return float((layers * gain).sum() / gain.sum()) if gain.sum() > 0 else None


def separation_layer(layers, mean_a, std_a, mean_b, std_b):
    """The lowest layer from which on (it and every layer above it) the two models' mean scores differ by more
    than their seed std combined, sqrt(std_a^2 + std_b^2); None when the top layer does not separate them
    (a layer with a single seed, std undefined, never separates)."""
    layers = np.asarray(layers)
    order = np.argsort(layers)
    gap = np.abs(np.asarray(mean_a, dtype=float) - np.asarray(mean_b, dtype=float))[order]
    spread = np.sqrt(np.asarray(std_a, dtype=float) ** 2 + np.asarray(std_b, dtype=float) ** 2)[order]
    apart = gap > spread  # NaN spread compares False
    first = None
    for i in range(len(order) - 1, -1, -1):
        if not apart[i]:
            break
        first = int(layers[order][i])
    return first

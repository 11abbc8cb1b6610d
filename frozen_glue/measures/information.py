"""How much task information a frozen model holds, beside how well a head scores: one pure function per measure.
Online-code MDL (Voita & Titov, 2020), control labels for selectivity (Hewitt & Liang, 2019), pointwise
V-information (Xu et al., 2020; Ethayarajh et al., 2022), and where in the layers a score lives (Tenney et al.,
2019). Must not train heads (information_probes.py does) nor read runs (information_report.py does)."""

import hashlib
import math
import re

import numpy as np
from scipy.special import log_softmax
from scipy.stats import ttest_ind_from_stats

# Voita & Titov's block boundaries, in % of the train rows: the first block is sent with the uniform code, each
# next one with a head trained on everything before it
MDL_BLOCKS_PERCENT = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25, 50, 100)
# one shuffle of train for every seed and layer, so that they encode the same blocks in the same order (the seeds
# then differ by head init and batch order only) and all heads of a block train in one stacked loop
MDL_SHUFFLE_SEED = 0
# --probe_convex: a trained head more than this below a convex probe on the same features (main metric) is flagged
# as under-trained at that layer
CONVEX_GAP = 0.05
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


WORD_TYPE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")  # lower-cased words and numbers; punctuation is not a type


def word_types(text: str) -> set:
    """The word types of a text (lower-cased), the units the control task assigns values to."""
    return set(WORD_TYPE.findall(str(text).lower()))


def type_value(word: str) -> float:
    """A number in [0, 1) fixed by the word type alone (sha256): the type's control value, the same in train and
    dev, and the same for every model and seed."""
    return int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big") / 2 ** 64


def control_score(text: str) -> float:
    """The mean control value of a text's word types (0.5 for a text without any)."""
    types = word_types(text)
    return float(np.mean([type_value(t) for t in types])) if types else 0.5


# texts are ranked against train texts with about as many word types: a long sentence shares its frequent types
# (the, a, punctuation) with every other long one, which moves all their scores alike, so one ranking over texts of
# every length would give dev (whole sentences) another label prior than train (SST-2: short phrases)
LENGTH_BUCKETS = (1, 2, 3, 4, 6, 9, 13, 19, 28, 41)  # lower ends, in word types
MIN_BUCKET = 20  # train texts a bucket needs to rank within it; fewer: ranked among all train texts
CONTROL_TASK = ("word-type control task: each word type a fixed random value (sha256), a text's score the mean value "
                "of its types, the label the train label quantile at the score's rank among train texts of about "
                "as many types")


def length_bucket(text: str) -> int:
    """Which LENGTH_BUCKETS range a text's number of word types falls in."""
    return int(np.searchsorted(LENGTH_BUCKETS, max(1, len(word_types(text))), side="right"))


def control_labels(texts, train_texts, train_labels, regression: bool) -> np.ndarray:
    """Control-task labels in the spirit of Hewitt & Liang (2019), at the sentence level: every word type gets a
    fixed random value (type_value), a text's control score is the mean value of its types, and the label is the
    train label distribution's quantile at the score's rank among the train texts of its length bucket (about as
    many word types; all train texts where a bucket has fewer than MIN_BUCKET). So the control labels follow the
    train label prior (STS-B: the train score distribution) in train and, bucket by bucket, in dev; the label is a
    function of word types that recur between train and dev (a probe can learn it by memorising types, as in their
    per-word control task), and it follows nothing else in the text."""
    train_scores = np.array([control_score(t) for t in train_texts])
    train_buckets = np.array([length_bucket(t) for t in train_texts])
    everything = np.sort(train_scores)
    ranked = {b: np.sort(train_scores[train_buckets == b]) for b in set(train_buckets.tolist())}
    u = []
    for text in texts:
        pool = ranked.get(length_bucket(text), everything)
        pool = pool if len(pool) >= MIN_BUCKET else everything
        u.append(np.searchsorted(pool, control_score(text), side="right") / len(pool))
    labels = np.quantile(np.asarray(train_labels, dtype=float), np.clip(u, 0, 1), method="inverted_cdf")
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


def expected_layer(layers, scores, higher_is_better: bool = True):
    """Tenney et al. (2019)'s expected layer E[l] = sum_l l * D_l / sum_l D_l, with D_l = s_l - s_(l-1) the gain of
    each probed layer over the one below it (layers ascending; the lowest layer has no gain). Their scores come
    from probes over all layers up to l (a scalar mix), which cannot lose what a lower layer had; single-layer
    probes can, so the curve is first made cumulative (its running best: the best layer up to l), and a layer
    scoring below an earlier one adds no gain instead of a negative one. For a curve that only rises the two are
    the same. None when no layer beats the lowest (no gain at all). NaN scores are skipped."""
    layers, scores = np.asarray(layers, dtype=float), np.asarray(scores, dtype=float)
    keep = np.isfinite(scores)
    layers, scores = layers[keep], scores[keep] if higher_is_better else -scores[keep]
    order = np.argsort(layers)  # two scores of one layer: their gains land on the same layer in either order
    layers, best = layers[order], np.maximum.accumulate(scores[order])
    gain = np.diff(best)
    if not len(gain) or gain.sum() <= 0:
        return None
    return float((layers[1:] * gain).sum() / gain.sum())


def separation_layer(layers, mean_a, std_a, n_a, mean_b, std_b, n_b, alpha=0.05):
    """The lowest layer from which on (it and every layer above it) the two models' mean scores differ with the
    top layer's sign and Welch's t-test across seeds (from the means, sample stds and seed counts) gives
    p < alpha; None when the top layer does not separate them (a layer with a single seed, std undefined, never
    separates). A gap that flips sign below the top is not "the same difference appearing earlier"."""
    layers = np.asarray(layers)
    order = np.argsort(layers)
    mean_a, mean_b = (np.asarray(m, dtype=float)[order] for m in (mean_a, mean_b))
    std_a, std_b = (np.asarray(s, dtype=float)[order] for s in (std_a, std_b))
    n_a, n_b = (np.asarray(n, dtype=float)[order] for n in (n_a, n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = ttest_ind_from_stats(mean_a, std_a, n_a, mean_b, std_b, n_b, equal_var=False).pvalue
    sign = np.sign(mean_a - mean_b)
    apart = (p < alpha) & (sign == sign[-1]) & (sign != 0)  # NaN p compares False
    first = None
    for i in range(len(order) - 1, -1, -1):
        if not apart[i]:
            break
        first = int(layers[order][i])
    return first

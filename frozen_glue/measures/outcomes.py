"""The example-level outcome rule of a pair of models (which of the two is right, or closer), and the text of an
example as the slices and the example browser read it. compare's example-level table and report.html's example
browser both count with `outcomes`, so their counts are equal by construction."""

import numpy as np


def example_texts(task, frame) -> list:
    """Each example's text inputs joined by a space (what the slices and the example browser read)."""
    return [" ".join(str(frame[k].iloc[i]) for k in task.text_keys) for i in range(len(frame))]


def outcome_names(task, names=("a", "b")) -> tuple:
    """The outcomes of one example of a pair, in the order the example-level table counts them."""
    if task.is_regression:
        return f"{names[0]} closer", f"{names[1]} closer", "equally close"
    return "both right", f"only {names[0]} right", f"only {names[1]} right", "both wrong"


def outcomes(task, pa, pb, gold, names=("a", "b")) -> np.ndarray:
    """Per example, which of the pair is right (classification: the combined prediction equals the gold label) or
    closer to the gold score (STS-B); the example-level table's counts are these."""
    pa, pb, gold = (np.asarray(x, dtype=float) for x in (pa, pb, gold))
    labels = outcome_names(task, names)
    if task.is_regression:
        ea, eb = np.abs(pa - gold), np.abs(pb - gold)
        return np.select([ea < eb, eb < ea], labels[:2], labels[2])
    ra, rb = pa == gold, pb == gold
    return np.select([ra & rb, ra & ~rb, ~ra & rb], labels[:3], labels[3])

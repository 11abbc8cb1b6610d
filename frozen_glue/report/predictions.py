"""One model's predictions on a split, read from its run folders: one seed's, or every seed's combined by the seed
vote (read_predictions; Predictions reads each model x task x split of a tree once), and two models' predictions
joined on idx (join). What compare.py, the report's sections and report.html read; must not compare or test."""

import numpy as np
import pandas as pd

from frozen_glue.core.errors import UserError
from frozen_glue.core.layout import counted, iter_runs, predictions_file
from frozen_glue.core.tasks import get_task


def read_predictions(runs_root, model, task, split, seed=None):
    """One model's predictions on a split, indexed by idx, from its complete runs only (layout.iter_runs): one
    seed, or all its seeds combined (seed_vote: the class of the highest mean probability over seeds; mean score
    for STS-B). attrs: `per_seed` (seeds x examples, for the hierarchical bootstrap; one row for a deterministic
    probe), `seeds`, `config` (the first run's), `collapsed` (how many of the runs' heads collapsed) and `ties`
    (examples whose mean probabilities tie at the top). Runs of different identities are refused, not combined."""
    task = get_task(task)
    name = predictions_file(split)
    runs, skipped = iter_runs(runs_root, model=model, task=task.name)
    runs = [r for r in runs if (seed is None or r.seed == seed) and (r.folder / name).exists()]
    if not runs:
        which = f"model {model} on {task.name}" + (f" seed {seed}" if seed is not None else "")
        raise UserError(f"no complete run with {name} for {which} under {runs_root}"
                        + (f" ({len(skipped)} incomplete run(s) skipped)" if skipped else ""))
    if len({r.identity_hash for r in runs}) > 1:
        raise UserError(f"the {task.name} runs of {model} have different identities (settings, model, tokenizer or "
                        f"data); compare one seed (--seed) or redo the others with the same ones")
    runs = list(counted(runs))  # a deterministic probe's seeds are one fit: one run
    files = [r.folder / name for r in runs]
    frames = [pd.read_json(f, lines=True).set_index("idx") for f in files]
    first = frames[0]
    for f, frame in zip(files[1:], frames[1:]):
        if not frame.index.equals(first.index) or not frame["label"].equals(first["label"]):
            raise UserError(f"{f} holds other examples than {files[0]}: runs of {model} used different data")
    out = first.drop(columns=[c for c in ("probs", "score", "pvi") if c in first.columns]).copy()
    preds = np.stack([fr["prediction"].to_numpy() for fr in frames])
    ties = 0
    if task.is_regression:
        out["prediction"] = preds.mean(0)
    else:
        mean_probs = np.mean([np.stack(fr["probs"].to_numpy()) for fr in frames], axis=0)
        if len(frames) > 1:  # one run: its own predictions, nothing to combine
            out["prediction"], ties = seed_vote(mean_probs)
        out["probs"] = list(mean_probs.round(4).tolist())
    if all("pvi" in fr.columns for fr in frames):  # mean bits over seeds (null, NaN here, for STS-B)
        out["pvi"] = np.mean([fr["pvi"].to_numpy(dtype=float) for fr in frames], axis=0)
    out.attrs.update(per_seed=preds, seeds=[f.parent.name for f in files], config=runs[0].config,
                     protocol=runs[0].protocol, collapsed=sum(bool(r.results.get("head_collapsed")) for r in runs),
                     ties=ties)
    return out


class Predictions:
    """read_predictions of one run tree, each model x task x split read once however many pairs, sections or the
    zero-shot comparison ask for it (a report of m models reads each model once, not m - 1 times). Hands out
    copies: a caller that changes its frame does not change another's."""

    def __init__(self, runs_root):
        self.runs_root, self._read = runs_root, {}

    def __call__(self, model, task, split):
        key = (model, get_task(task).name, split)
        if key not in self._read:
            self._read[key] = read_predictions(self.runs_root, model, task, split)
        return self._read[key].copy(deep=True)


def seed_vote(mean_probs):
    """(each example's combined class, how many examples tie): the class with the highest probability averaged over
    seeds, not a majority of the seeds' votes, so an even number of seeds splitting 1-1 is decided by how sure
    each seed was; an exact tie of mean probabilities (e.g. two identical [0.5, 0.5]) goes to the lowest class id
    and is counted."""
    mean_probs = np.asarray(mean_probs, dtype=float)
    top = mean_probs.max(axis=1, keepdims=True)
    ties = int(np.sum(np.sum(np.isclose(mean_probs, top, rtol=0, atol=1e-12), axis=1) > 1))
    return mean_probs.argmax(axis=1), ties


def join(a: pd.DataFrame, b: pd.DataFrame, names=("A", "B")):
    """Join two models' predictions on idx; refuse when they are not the same examples with the same gold."""
    if set(a.index) != set(b.index):
        only = len(set(a.index) ^ set(b.index))
        raise UserError(f"the prediction files of {names[0]} and {names[1]} cover different examples ({only} idx "
                        f"in one only): they were run on different data, compare runs of the same data")
    b = b.loc[a.index]
    if not np.allclose(a["label"].to_numpy(dtype=float), b["label"].to_numpy(dtype=float)):
        raise UserError(f"{names[0]} and {names[1]} disagree on gold labels for the same idx: different data")
    return a, b

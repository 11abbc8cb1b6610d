"""--probe_mdl and --probe_control on the cached path. MDL: each block's head trained by Voita & Titov's protocol
(block_head: to convergence, early-stopped on a held-out part of the rows it may see, the best checkpoint kept).
Selectivity: the run's own head recipe (epochs, learning rate, batch, the chosen head setting) trained on control
labels, every probed layer x seed stacked in one loop as the run's own heads are (trainers.head_trainers,
head_training.train_heads). The measures themselves are information.py's; the files are mdl.json and
selectivity.json of each seed folder."""

import copy
import dataclasses
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from frozen_glue.core import layout
from frozen_glue.core.tasks import compute_metrics
from frozen_glue.measures import information
from frozen_glue.model import heads
from frozen_glue.training import cached_head, head_training, logistic
from frozen_glue.training.trainers import head_trainers, predict_split

logger = logging.getLogger(__name__)


def recipe(prep, layers, settings=None):
    """(key, seed, TrainingArguments, layer) of every layer x seed head: the run's arguments with the layer's chosen
    head setting (`settings`, from a grid), no evaluation during training (these heads are scored here, on their
    own labels)."""
    return [((layer, seed), seed, dataclasses.replace(prep.seed_args(seed, folder), eval_strategy="no",
                                                      **(settings or {}).get(layer, {})), layer)
            for layer in layers for seed, folder in prep.folders.items()]


def train(prep, layers, train_sets, settings=None):
    """{(layer, seed): trained Trainer} on train_sets[layer] (a FeatureDataset), all stacked, each layer with its
    chosen head setting."""
    trainers = head_trainers(prep, lambda key: {"train": train_sets[key[0]]}.__getitem__,
                                     recipe(prep, layers, settings))
    head_training.train_heads(list(trainers.values()), prep.fast_loop_fallback)
    return trainers


# Voita & Titov (2020), online code: the probe for each block trains on everything sent before it, to convergence,
# with early stopping on a held-out part of that data (never dev) and its best checkpoint kept. Fixed here, not taken
# from the run's head recipe, so that every model is coded by the same protocol: Adam on features centred and scaled
# by the seen rows' statistics (the code then does not depend on a model's feature scale), up to MDL_MAX_EPOCHS epochs,
# stopping after MDL_PATIENCE epochs without a better held-out loss. The candidates include the uniform code itself:
# a block the seen data cannot predict better costs its uniform bits, never more.
MDL_HOLDOUT_FRACTION = 0.1
MDL_MIN_HOLDOUT = 20  # rows; a small prefix holds out up to half of itself instead
MDL_LEARNING_RATE = 1e-2
MDL_BATCH_SIZE = 64
MDL_MAX_EPOCHS = 100
MDL_PATIENCE = 10
MDL_ROUND_STEPS = 20


def holdout_rows(t: int) -> int:
    """How many of a block head's t seen rows are held out for early stopping: MDL_HOLDOUT_FRACTION of them, but at
    least min(t // 2, MDL_MIN_HOLDOUT): on a 10 % cut of a small prefix (1-3 rows) the best checkpoint is luck."""
    return max(round(MDL_HOLDOUT_FRACTION * t), min(t // 2, MDL_MIN_HOLDOUT))


def block_head(prep, layer, seed, features, labels):
    """The head that codes the next block: (head, mean, scale) trained on the first rows of `features` (a prefix
    in transmission order) and early-stopped on its last holdout_rows(t), or None when no checkpoint beats
    the uniform code on those held-out rows (or there are fewer than 2 rows to hold any out)."""
    t, k = len(labels), prep.task.num_labels
    hold = holdout_rows(t)
    if not hold:
        return None
    # centred and divided by one number, the seen rows' root-mean-square distance from their mean (no labels used):
    # the code does not change when a model's features are scaled, and the geometry between dimensions is kept
    mean = features.mean(0)
    scale = float((features - mean).pow(2).sum(1).mean().sqrt()) or 1.0
    x = (features - mean) / scale
    fit_x, fit_y, hold_x, hold_y = x[:t - hold], labels[:t - hold], x[t - hold:], labels[t - hold:]
    modules = copy.deepcopy(heads.head_modules(prep.model))
    heads.init_head(modules.values(), prep.config, seed)
    head = cached_head.CachedHead(modules, source_model=prep.model)
    step_loss = _step_loss(head)
    optimizer = torch.optim.Adam(head.parameters(), lr=MDL_LEARNING_RATE)
    order = torch.Generator().manual_seed(seed * 1009 + layer)
    best_loss, best_state, waited = math.log(k), None, 0  # the uniform code's held-out loss (nats per row)
    batches = iter(())
    for epoch in range(MDL_MAX_EPOCHS + 1):
        # a checkpoint every MDL_ROUND_STEPS steps or one pass, whichever is longer: a few seen rows still get enough
        # steps to converge; round 0 (the initial head) is a candidate too
        for _ in range(max(MDL_ROUND_STEPS, math.ceil(len(fit_y) / MDL_BATCH_SIZE)) if epoch else 0):
            batch = next(batches, None)
            if batch is None:  # a new pass in a new order
                batches = iter(torch.randperm(len(fit_y), generator=order).split(MDL_BATCH_SIZE))
                batch = next(batches)
            head.train()
            optimizer.zero_grad()
            step_loss(fit_x[batch], fit_y[batch]).backward()
            optimizer.step()
        head.eval()
        with torch.no_grad():
            rows = torch.nn.functional.cross_entropy(head(features=hold_x)["logits"], hold_y, reduction="none")
        # a checkpoint replaces the uniform code only when it beats it by more than the standard error of the rows'
        # loss differences: with few held-out rows, the best of many checkpoints beats it by luck alone
        loss, margin = float(rows.mean()), 2 * float((rows - math.log(k)).std()) / math.sqrt(len(rows)) if len(rows) > 1 \
            else math.inf
        if loss < best_loss - 1e-7 and (best_state is not None or loss < math.log(k) - margin):
            best_loss, best_state, waited = loss, copy.deepcopy(head.state_dict()), 0
        elif epoch:
            waited += 1
            if waited >= MDL_PATIENCE:
                break
    if best_state is None:
        return None
    head.load_state_dict(best_state)
    return head.eval(), mean, scale


def _step_loss(head) -> Callable:
    """(features, labels) -> a training step's loss: the head's own forward and loss, or, when its forward is checked
    to be linear(dropout(x)) (head_training.stackable) and its loss is cross-entropy, that form called directly: the
    same numbers without the model forward's per-call overhead (most of an MDL run's time: thousands of steps on tiny
    batches, as in head_training's stacked loop)."""
    form = head_training.stackable(head)
    if form is None or "standardize" in head.heads or head.problem_type not in (None, "single_label_classification"):
        return lambda x, y: head(features=x, labels=y)["loss"]
    linear, dropout = form
    return lambda x, y: torch.nn.functional.cross_entropy(linear(x if dropout is None else dropout(x)), y)


def block_bits(prep, layer, seed, features, labels, seen, block) -> float:
    """Bits to send the labels of `block` with the head trained on the rows `seen` (block_head), or with the
    uniform code when that head is None."""
    fitted = block_head(prep, layer, seed, features[torch.as_tensor(seen)].float(), torch.as_tensor(labels[seen]))
    if fitted is None:
        return information.uniform_codelength(len(block), prep.task.num_labels)
    head, mean, scale = fitted
    with torch.no_grad():
        logits = head(features=(features[torch.as_tensor(block)].float() - mean) / scale)["logits"]
    return information.codelength_bits(logits.numpy(), labels[block])


def mdl(prep, layers, data, settings=None) -> dict:
    """{seed: mdl.json content}: every block after the first sent with the head trained on all blocks before it by
    Voita & Titov's protocol (block_head; information.online_codelength), per layer and seed. `settings` (the grid's
    choice) is not used: the protocol fixes the probe's training."""
    labels = data[layers[0]]["train"].labels.numpy()
    n, k = len(labels), prep.task.num_labels
    order, ends = information.mdl_order(n), information.block_ends(n)
    bits = {}
    for layer in layers:
        features = data[layer]["train"].features
        for start, end in zip(ends[:-1], ends[1:]):
            seen, block = order[:start], order[start:end]
            for seed in prep.folders:
                bits.setdefault((layer, seed), []).append(block_bits(prep, layer, seed, features, labels, seen,
                                                                     block))
    logger.info(f"online-code MDL: {len(ends) - 1} blocks x {len(layers)} layer(s) x {len(prep.folders)} seed(s), "
                f"each head early-stopped on {MDL_HOLDOUT_FRACTION:.0%} of the rows it may see")
    return {seed: {"train_rows": n, "num_classes": k, "shuffle_seed": information.MDL_SHUFFLE_SEED,
                   "block_ends": ends, "kbits": 1000, "protocol": MDL_PROTOCOL,
                   "layers": {str(layer): information.online_codelength(ends, k, bits[layer, seed])
                              for layer in layers}}
            for seed in prep.folders}


MDL_PROTOCOL = {"holdout_fraction": MDL_HOLDOUT_FRACTION, "min_holdout": MDL_MIN_HOLDOUT, "optimizer": "adam",
                "learning_rate": MDL_LEARNING_RATE, "batch_size": MDL_BATCH_SIZE, "max_epochs": MDL_MAX_EPOCHS,
                "patience": MDL_PATIENCE, "standardised": True, "units": "bits (kbits = 1000 bits)"}


def texts(task, raw):
    """Each row's text (a pair's two texts joined by a newline): what the control labels are a function of."""
    columns = [list(raw[key]) for key in task.text_keys]
    return ["\n".join(str(c[i]) for c in columns) for i in range(len(raw))]


def main_score(task, logits, gold):
    """The task's main metric of a head's outputs against `gold`; None where undefined (a constant score)."""
    logits = np.asarray(logits)
    predictions = logits.reshape(-1) if task.is_regression else logits.argmax(-1)
    value = compute_metrics(task, predictions, gold)[task.main_metric]
    return None if math.isnan(value) else value


def head_score(task, trainer, dataset, gold):
    """A trained head's (or probe's) main metric on one split's features against `gold`."""
    return main_score(task, predict_split(trainer, dataset).predictions, gold)


def selectivity(prep, layers, data, trainers, settings=None) -> dict:
    """{seed: selectivity.json content}: the run's heads (`trainers`, by (layer, seed)) scored on each validation
    split's gold labels, heads of the same recipe trained on control labels scored on that split's control labels,
    and task - control."""
    task = prep.task
    train_labels = np.asarray(prep.raw["train"]["label"])
    train_texts = texts(task, prep.raw["train"])
    control = {s: information.control_labels(texts(task, prep.raw[s]), train_texts, train_labels, task.is_regression)
               for s in ["train", *task.validation_splits] if s in data[layers[0]]}
    control_heads = train(prep, layers, {layer: cached_head.FeatureDataset(
        data[layer]["train"].features, control["train"].tolist(), task.is_regression) for layer in layers}, settings)
    out = {seed: {"metric": task.main_metric, "control": information.CONTROL_TASK,
                  "layers": {}} for seed in prep.folders}
    for (layer, seed), head in control_heads.items():
        scores = {}
        for split in [s for s in task.validation_splits if s in control]:
            dataset = data[layer][split]
            suffix = task.metric_suffix(split)
            gold = head_score(task, trainers[layer, seed], dataset, np.asarray(prep.raw[split]["label"]))
            chance = head_score(task, head, dataset, control[split])
            scores.update({f"task{suffix}": gold, f"control{suffix}": chance,
                           f"selectivity{suffix}": None if gold is None or chance is None else gold - chance})
        out[seed]["layers"][str(layer)] = scores
    return out


def convex(prep, layers, data, trainers) -> dict:
    """{seed: convex.json content}: at each probed layer, the run's trained head (`trainers`, by (layer, seed)) and
    --probe logistic's convex probe (fitted once on the same train features: deterministic) scored on each
    validation split's main metric, and gap = convex - head (every GLUE main metric is higher-is-better)."""
    task = prep.task
    out = {seed: {"metric": task.main_metric, "probe": logistic.DESCRIPTION, "flag_above": information.CONVEX_GAP,
                  "layers": {}} for seed in prep.folders}
    for layer in layers:
        probe = logistic.LogisticProbe(task.is_regression)
        probe.fit(data[layer]["train"])
        for split in [s for s in task.validation_splits if s in data[layer]]:
            dataset, suffix = data[layer][split], task.metric_suffix(split)
            gold = np.asarray(prep.raw[split]["label"])
            reference = head_score(task, probe, dataset, gold)  # predict_split: the probe predicts itself
            for seed in prep.folders:
                head = head_score(task, trainers[layer, seed], dataset, gold)
                out[seed]["layers"].setdefault(str(layer), {}).update({
                    f"head{suffix}": head, f"convex{suffix}": reference,
                    f"gap{suffix}": None if head is None or reference is None else reference - head})
    return out


@dataclasses.dataclass(frozen=True)
class Measure:
    """One information measure of the cached path: the file it writes in each seed folder (layout.py names it),
    whether the run asks for it, and its {seed: file content} from the run's features (`data`: {layer: {split:
    FeatureDataset}}), its trained heads (`trainers`, by (layer, seed)) and each layer's chosen head setting."""
    file: str
    wanted: Callable[..., bool]  # (prep) -> bool
    compute: Callable[..., dict]  # (prep, layers, data, trainers, settings) -> {seed: content}


# The measures a run computes after training its heads, in order. A new measure plugs in here (its function above,
# its flag in arguments.py, its file name in layout.py): runners.py calls measure() and write() only.
MEASURES = (
    Measure(layout.MDL_FILE, lambda prep: prep.study_args.probe_mdl,
            lambda prep, layers, data, trainers, settings: mdl(prep, layers, data, settings)),
    Measure(layout.SELECTIVITY_FILE, lambda prep: prep.study_args.probe_control and prep.args.do_eval, selectivity),
    Measure(layout.CONVEX_FILE, lambda prep: prep.study_args.probe_convex,
            lambda prep, layers, data, trainers, settings: convex(prep, layers, data, trainers)),
)


def measure(prep, layers, data, trainers, settings=None) -> dict:
    """{seed: {file name: content}} of every measure in MEASURES the run asks for ({} per seed when none)."""
    out = {seed: {} for seed in prep.folders}
    for m in MEASURES:
        if m.wanted(prep):
            for seed, content in m.compute(prep, layers, data, trainers, settings).items():
                out[seed][m.file] = content
    return out


def write(folder, files: dict):
    """One seed's mdl.json / selectivity.json / convex.json (strict JSON, atomically)."""
    for name, content in files.items():
        layout.atomic_write_json(Path(folder) / name, content)

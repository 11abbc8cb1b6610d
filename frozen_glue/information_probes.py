"""--probe_mdl and --probe_control on the cached path: the run's own head recipe (epochs, learning rate, batch,
the chosen head setting) trained on prefixes of train (MDL) and on control labels (selectivity), every probed
layer x seed stacked in one loop as the run's own heads are (runners.head_trainers, head_training.train_heads).
The measures themselves are information.py's; the files are mdl.json and selectivity.json of each seed folder."""

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np
import torch

from . import cached_head, head_training, information, layout, runners
from .tasks import compute_metrics

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
    trainers = runners.head_trainers(prep, lambda key: {"train": train_sets[key[0]]}.__getitem__,
                                     recipe(prep, layers, settings))
    head_training.train_heads(list(trainers.values()), prep.fast_loop_fallback)
    return trainers


def mdl(prep, layers, data, settings=None) -> dict:
    """{seed: mdl.json content}: every block after the first sent with the head trained on all blocks before it
    (information.online_codelength), per layer and seed."""
    labels = data[layers[0]]["train"].labels.numpy()
    n, k = len(labels), prep.task.num_labels
    order, ends = information.mdl_order(n), information.block_ends(n)
    bits = {}
    for start, end in zip(ends[:-1], ends[1:]):
        seen, block = order[:start], order[start:end]
        # row views, not copies: every layer's prefix of a memory-mapped entry would otherwise sit in RAM
        prefix = {layer: cached_head.FeatureDataset(cached_head.RowView(data[layer]["train"].features, seen),
                                                    labels[seen].tolist(), False) for layer in layers}
        for (layer, seed), trainer in train(prep, layers, prefix, settings).items():
            rows = cached_head.FeatureDataset(cached_head.RowView(data[layer]["train"].features, block),
                                              labels[block].tolist(), False)
            logits = runners.predict_split(trainer, rows).predictions
            bits.setdefault((layer, seed), []).append(information.codelength_bits(logits, labels[block]))
    logger.info(f"online-code MDL: {len(ends) - 1} prefixes x {len(layers)} layer(s) x {len(prep.folders)} seed(s)")
    return {seed: {"train_rows": n, "num_classes": k, "shuffle_seed": information.MDL_SHUFFLE_SEED,
                   "block_ends": ends, "kbits": 1000,
                   "layers": {str(layer): information.online_codelength(ends, k, bits[layer, seed])
                              for layer in layers}}
            for seed in prep.folders}


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


def selectivity(prep, layers, data, trainers, settings=None) -> dict:
    """{seed: selectivity.json content}: the run's heads (`trainers`, by (layer, seed)) scored on each validation
    split's gold labels, heads of the same recipe trained on control labels scored on that split's control labels,
    and task - control."""
    task = prep.task
    train_labels = np.asarray(prep.raw["train"]["label"])
    control = {s: information.control_labels(texts(task, prep.raw[s]), train_labels, task.is_regression)
               for s in ["train", *task.validation_splits] if s in data[layers[0]]}
    control_heads = train(prep, layers, {layer: cached_head.FeatureDataset(
        data[layer]["train"].features, control["train"].tolist(), task.is_regression) for layer in layers}, settings)
    out = {seed: {"metric": task.main_metric, "control": "sha256 of the text through the train label quantiles",
                  "layers": {}} for seed in prep.folders}
    for (layer, seed), head in control_heads.items():
        scores = {}
        for split in [s for s in task.validation_splits if s in control]:
            dataset = data[layer][split]
            suffix = task.metric_suffix(split)
            gold = main_score(task, runners.predict_split(trainers[layer, seed], dataset).predictions,
                              np.asarray(prep.raw[split]["label"]))
            chance = main_score(task, runners.predict_split(head, dataset).predictions, control[split])
            scores.update({f"task{suffix}": gold, f"control{suffix}": chance,
                           f"selectivity{suffix}": None if gold is None or chance is None else gold - chance})
        out[seed]["layers"][str(layer)] = scores
    return out


def measure(prep, layers, data, trainers, settings=None) -> dict:
    """{seed: {file name: content}} of what --probe_mdl and --probe_control ask for ({} when neither); each layer's
    heads with its chosen head setting (`settings`, from a grid)."""
    out = {seed: {} for seed in prep.folders}
    if prep.study_args.probe_mdl:
        for seed, content in mdl(prep, layers, data, settings).items():
            out[seed][layout.MDL_FILE] = content
    if prep.study_args.probe_control and prep.args.do_eval:
        for seed, content in selectivity(prep, layers, data, trainers, settings).items():
            out[seed][layout.SELECTIVITY_FILE] = content
    return out


def write(folder, files: dict):
    """One seed's mdl.json / selectivity.json (strict JSON, atomically)."""
    for name, content in files.items():
        layout.atomic_write_json(Path(folder) / name, content)

"""Trainers of heads: a Trainer over a prepared run's data (make_trainer, for the Trainer path's whole model and
for the cached path's heads alike), fresh heads on cached features with their Trainers (head_trainers), and a
trained head's outputs on a whole split (predict_split). What the run's heads (runners.py) and the information
probes' heads (information_probes.py) both train and predict through, so that both follow one recipe. Must not
load models, read the feature cache or write files.

`prep` is the run's prepare.Prepared: its task, model (whose head modules are copied), arguments and init_heads."""

import contextlib
import copy
import dataclasses
import io

import numpy as np
import torch

# transformers prints "[INFO] Running in WANDB offline mode" when its integrations are imported and WANDB_MODE is
# offline, whether or not the run reports to W&B; keep W&B silent unless --report_to wandb
with contextlib.redirect_stdout(io.StringIO()):
    from transformers import Trainer
    from transformers.trainer_utils import PredictionOutput

from frozen_glue.core.errors import UserError
from frozen_glue.core.tasks import compute_metrics
from frozen_glue.model import heads
from frozen_glue.training import cached_head


def trainer_metrics_fn(task):
    """compute_metrics for the Trainer's evaluation during training (--eval_strategy)."""

    def fn(prediction):
        logits = np.asarray(prediction.predictions)
        predictions = logits.reshape(-1) if task.is_regression else logits.argmax(-1)
        return compute_metrics(task, predictions, prediction.label_ids)

    return fn


def make_trainer(prep, model, args, data, **extra):
    """A Trainer over `data(split)`: the train split, and the validation split(s) when --eval_strategy asks."""
    evaluating = args.eval_strategy != "no"
    eval_dataset = None
    if evaluating:
        splits = [s for s in prep.task.validation_splits if s in prep.raw]
        if not splits:
            raise UserError("--eval_strategy needs a validation split; add --do_eval")
        eval_dataset = data(splits[0]) if len(splits) == 1 else {s: data(s) for s in splits}
    return Trainer(model=model, args=args, train_dataset=data("train") if "train" in prep.raw else None,
                   eval_dataset=eval_dataset, compute_metrics=trainer_metrics_fn(prep.task) if evaluating else None,
                   **extra)


def predict_split(trainer, dataset):
    """A trained head's outputs on a whole split in one forward (layers x seeds x settings of them: a Trainer
    evaluation loop each would cost more than their training), with the Trainer's eval_loss; the logistic probe
    predicts itself."""
    if not isinstance(trainer.model if hasattr(trainer, "model") else None, cached_head.CachedHead):
        return trainer.predict(dataset, metric_key_prefix="eval")
    head = trainer.model.eval()
    labels = dataset.labels
    with torch.no_grad():
        out = head(features=dataset.features.float().to(trainer.args.device),  # RowView.float: its rows
                   labels=None if labels is None else labels.to(trainer.args.device))
    metrics = {} if labels is None else {"eval_loss": float(out["loss"])}
    return PredictionOutput(predictions=out["logits"].float().cpu().numpy(),
                            label_ids=None if labels is None else labels.numpy(), metrics=metrics)


def head_trainers(prep, data, seeds_args):
    """{key: Trainer of a fresh CachedHead} for each (key, seed, TrainingArguments, layer) in seeds_args; data(key) is
    that trainer's split -> FeatureDataset; the head starts from the seed, or from the saved head of that layer."""
    trainers, stats = {}, {}
    for key, seed, args, layer in seeds_args:
        # FeatureDataset yields exactly CachedHead's arguments: no column filtering needed
        args = dataclasses.replace(args, deepspeed=None, remove_unused_columns=False)
        modules = copy.deepcopy(heads.head_modules(prep.model))
        if prep.study_args.standardize_features:
            modules["standardize"] = standardizer(data(key), stats, modules)
        prep.init_heads(modules, seed, layer)
        head = cached_head.CachedHead(modules, source_model=prep.model)
        trainers[key] = make_trainer(prep, head, args, data(key))
    return trainers


def standardizer(splits, stats: dict, modules: dict):
    """--standardize_features: the Standardize module of the rows this head trains on (`splits("train")`; stats
    computed once per feature tensor, so the heads of one layer share them); when evaluating a saved head (no train
    split), an identity one that --head_from's saved statistics are loaded into."""
    try:
        train = splits("train").features
    except KeyError:
        width = next(m for top in modules.values() for m in top.modules() if isinstance(m, torch.nn.Linear)).in_features
        return cached_head.Standardize(torch.zeros(width), torch.ones(width))
    if id(train) not in stats:
        stats[id(train)] = cached_head.feature_stats(train)
    return cached_head.Standardize(*stats[id(train)])

"""Evaluation of a trained head, for the runners: every validation split's metrics (upstream's key names),
prediction rows and collapse check, and every test split's logits. Must not write files (writer.py writes what this
returns)."""

import dataclasses
import logging

import numpy as np
import torch

from frozen_glue.core.tasks import compute_metrics
from frozen_glue.measures import diagnostics, information

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Evaluated:
    """What writer.finish writes: metrics for all_results.json (with head_collapsed / head_collapse_reason under
    --do_eval), prediction rows per validation split, and the logits per test split."""
    metrics: dict
    rows: dict
    test_logits: dict


def eval_outputs(task, split, raw, prediction_output, train_labels=None):
    """(metrics with upstream key names, prediction rows) for one evaluated split. With the train labels, each
    row's `pvi` (bits) and the split's mean, `eval_v_information` (information.pvi_bits; STS-B: pvi null, no
    mean)."""
    logits = np.asarray(prediction_output.predictions)
    raw = raw.to_dict()  # plain lists: datasets' column objects are slow to index one row at a time
    labels = np.asarray(raw["label"])
    suffix = task.metric_suffix(split)
    if task.is_regression:
        predictions = logits.reshape(-1)
    else:
        probs = torch.softmax(torch.from_numpy(logits).float(), dim=-1).numpy()
        predictions = logits.argmax(-1)
    metrics = {f"eval_{k}{suffix}": v for k, v in compute_metrics(task, predictions, labels).items()}
    loss = prediction_output.metrics.get("eval_loss")
    if loss is not None:
        metrics[f"eval_loss{suffix}"] = loss
    metrics[f"eval_samples{suffix}"] = len(labels)
    pvi = [None] * len(labels)
    if train_labels is not None and not task.is_regression:
        pvi = information.pvi_bits(logits, labels, information.label_prior(train_labels, task.num_labels))
        metrics[f"eval_v_information{suffix}"] = float(np.mean(pvi))
    rows = []
    for i in range(len(labels)):
        row = {"idx": int(raw["idx"][i]), "label": raw["label"][i]}
        if task.is_regression:
            row.update(prediction=float(predictions[i]), score=float(predictions[i]))
        else:
            row.update(prediction=int(predictions[i]), probs=[round(float(p), 6) for p in probs[i]])
        row["pvi"] = None if pvi[i] is None else round(float(pvi[i]), 6)
        row.update({k: raw[k][i] for k in task.text_keys})
        rows.append(row)
    return metrics, rows


def evaluate(prep, trainer, eval_data) -> Evaluated:
    """Every validation split (under --do_eval): metrics, prediction rows, and the collapse check; then every test
    split's logits. Every rank calls this (prediction under DeepSpeed is collective)."""
    task, train_labels = prep.task, prep.train_labels
    metrics, collapsed, rows, test_logits = {}, [], {}, {}
    for split in task.validation_splits if prep.args.do_eval else ():
        if split not in prep.raw:
            continue
        output = trainer.predict(eval_data(split), metric_key_prefix="eval")
        split_metrics, rows[split] = eval_outputs(task, split, prep.raw[split], output, train_labels)
        metrics.update(split_metrics)
        labels = prep.raw[split]["label"]
        if train_labels is not None:
            metrics.update(diagnostics.majority_baseline(task, train_labels, labels, task.metric_suffix(split)))
        reason = diagnostics.collapse_reason(task, output.predictions, labels)
        if reason:
            collapsed.append(reason + (f" ({split})" if len(task.validation_splits) > 1 else ""))
        for k in ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second"):
            if k in output.metrics:
                metrics[k + task.metric_suffix(split)] = output.metrics[k]
        if trainer.is_world_process_zero():
            logger.info(" ".join(f"{k}={v:.4f}" for k, v in split_metrics.items() if "samples" not in k))
    for split in [s for s in prep.raw if s.startswith("test")]:
        test_logits[split] = trainer.predict(eval_data(split), metric_key_prefix="predict").predictions
    if prep.args.do_eval:  # a dead head must not be read as a model difference (analysis marks it)
        metrics.update(head_collapsed=bool(collapsed), head_collapse_reason="; ".join(collapsed) or None)
        if collapsed:
            logger.warning(f"the head learnt nothing: {'; '.join(collapsed)}")
    return Evaluated(metrics, rows, test_logits)

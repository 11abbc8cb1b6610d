"""The one writer of a run folder (docs/DESIGN.md): config.json first, then upstream's result files, the head, the
prediction dumps, and all_results.json last. Must not train or decide paths (layout.py names every file)."""

import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save

from . import contract, diagnostics, identity, information, layout, pooling, sharding, tracking
from .tasks import compute_metrics

logger = logging.getLogger(__name__)


def start(prep, seed, folder, path):
    """A fresh run folder holding only this run's config.json (no file of an earlier run stays beside it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    layout.clear_outputs(folder)
    args = {"model": dataclasses.asdict(prep.model_args), "data": dataclasses.asdict(prep.data_args),
            "study": dataclasses.asdict(prep.study_args), "training": prep.seed_args(seed, folder).to_dict()}
    for group in args.values():
        group.pop("token", None)  # never store credentials
        group.pop("hub_token", None)
    cuts = {k: getattr(prep.data_args, k) for k in ("max_train_samples", "max_eval_samples", "max_predict_samples")
            if getattr(prep.data_args, k)}
    # the Trainer path also runs model types the feature cache does not know: their rule is the model's own, unnamed
    rule = pooling.pooling_rule(prep.config, prep.study_args.pooling) if prep.config.model_type in pooling.POOLING \
        else None
    ident = {"protocol_hash": contract.protocol_hash(prep.protocol), "model_fingerprint": prep.model_fp,
              "tokenizer_fingerprint": prep.tokenizer_fp, "data_fingerprints": prep.fingerprints}
    layout.atomic_write_json(folder / layout.CONFIG_FILE, {
        "format_version": layout.RUN_FORMAT_VERSION, "task": prep.task.name, "seed": seed, "path": path,
        "protocol": prep.protocol, "args": args, **ident,
        "identity_hash": identity.identity_hash(ident),
        "model_source": identity.source_stamp(prep.model_args.model_name_or_path),
        **prep.provenance,
        "pooling": {"rule": rule, "position": pooling.pooled_position(rule, prep.model_args.append_eos),
                    "pad_token": prep.tokenizer.pad_token, "eos_token": prep.tokenizer.eos_token},
        # the cached path trains its heads in one process, also when the extraction was sharded over ranks
        "global_batch_size": prep.args.per_device_train_batch_size * prep.args.gradient_accumulation_steps
        * (1 if path == "cached" else prep.args.world_size),
        "extraction_ranks": sharding.world()[1] if path == "cached" else None,
        "max_samples": cuts or None, "cut_splits": prep.cut or None, "debug_run": bool(prep.cut),
        "start_time": prep.started,
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
    })


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


def write_predict_results(folder, task, split, raw, logits):
    """Upstream's predict_results_<task>.txt (MNLI mismatched: predict_results_mnli-mm.txt)."""
    logits = np.asarray(logits)
    lines = ["index\tprediction"]
    for i, idx in enumerate(list(raw["idx"])):
        value = f"{float(logits[i].reshape(-1)[0]):3.3f}" if task.is_regression else task.label_names[
            int(logits[i].argmax())]
        lines.append(f"{idx}\t{value}")
    layout.atomic_write_bytes(Path(folder) / layout.predict_results_file(task.name, split),
                              ("\n".join(lines) + "\n").encode())


def write_layer_results(folder, results: dict):
    """layer_results.json: {"<layer>": {"eval_<metric>": value}} for every probed layer of one seed."""
    layout.atomic_write_json(Path(folder) / layout.LAYER_RESULTS_FILE, {str(k): v for k, v in results.items()})


def write_layer_heads(folder, heads: dict):
    """layer_heads.safetensors: every probed layer's trained head, its tensors as "layer<L>.<name>" (what
    --head_from reads to evaluate each layer with its own head)."""
    layout.atomic_write_bytes(Path(folder) / layout.LAYER_HEADS_FILE, save(
        {f"layer{layer}.{k}": v.contiguous() for layer, state in heads.items() for k, v in state.items()}))


def write_selection(folder, selection: dict):
    """selection.json: the head-setting grid's hold-out scores (per seed and mean) and the setting chosen."""
    layout.atomic_write_json(Path(folder) / layout.SELECTION_FILE, selection)


def write_training(folder, trainer, train_metrics, train_rows):
    """Upstream's train_results.json and trainer_state.json; returns the train metrics as upstream reports them."""
    # Trainer's progress callbacks pop total_flos from the metrics they print; upstream's file has it
    metrics = {"total_flos": trainer.state.total_flos, **train_metrics, "train_samples": train_rows}
    if trainer.is_world_process_zero():
        layout.atomic_write_json(folder / layout.TRAIN_RESULTS_FILE, metrics)
        layout.atomic_write_json(folder / layout.STATE_FILE, dataclasses.asdict(trainer.state))  # strict: a NaN loss is null
    return metrics


def evaluate(prep, folder, trainer, eval_data):
    """Every validation split: metrics, prediction dumps, and the collapse check; then every test split's
    predict_results file. Returns (metrics, collapse reasons)."""
    task, main = prep.task, trainer.is_world_process_zero()
    train_labels = prep.train_labels
    results, collapsed = {}, []
    for split in task.validation_splits if prep.args.do_eval else ():
        if split not in prep.raw:
            continue
        output = trainer.predict(eval_data(split), metric_key_prefix="eval")
        metrics, rows = eval_outputs(task, split, prep.raw[split], output, train_labels)
        results.update(metrics)
        labels = prep.raw[split]["label"]
        if train_labels is not None:
            results.update(diagnostics.majority_baseline(task, train_labels, labels, task.metric_suffix(split)))
        reason = diagnostics.collapse_reason(task, output.predictions, labels)
        if reason:
            collapsed.append(reason + (f" ({split})" if len(task.validation_splits) > 1 else ""))
        for k in ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second"):
            if k in output.metrics:
                results[k + task.metric_suffix(split)] = output.metrics[k]
        if main:
            layout.atomic_write_jsonl(folder / layout.predictions_file(split), rows)
            logger.info(" ".join(f"{k}={v:.4f}" for k, v in metrics.items() if "samples" not in k))
    for split in [s for s in prep.raw if s.startswith("test")]:
        output = trainer.predict(eval_data(split), metric_key_prefix="predict")
        if main:
            write_predict_results(folder, task, split, prep.raw[split], output.predictions)
    return results, collapsed


def finish(prep, seed, trainer, train_metrics, eval_data, head_state, save_model, extra=None):
    """After training (train_metrics: None without --do_train): upstream's training files, the head, evaluation,
    prediction dumps, then all_results.json last (atomically), then W&B. The files and keys are upstream
    run_glue.py's; `extra` (the chosen head setting) goes into all_results.json."""
    folder = Path(prep.folders[seed])
    main = trainer.is_world_process_zero()
    results = dict(extra or {})
    if train_metrics is not None:
        results.update(write_training(folder, trainer, train_metrics, len(prep.raw["train"])))
    state = head_state()  # every rank: gathering a ZeRO-3 head is collective
    if main:
        layout.atomic_write_bytes(folder / layout.HEAD_FILE, save(state))
        if prep.model_args.save_full_model:
            save_model(str(folder / layout.MODEL_DIR))
    metrics, collapsed = evaluate(prep, folder, trainer, eval_data)
    results.update(metrics)
    if prep.args.do_eval:  # a dead head must not be read as a model difference (analysis marks it)
        results.update(head_collapsed=bool(collapsed), head_collapse_reason="; ".join(collapsed) or None)
        if collapsed:
            logger.warning(f"the head learnt nothing: {'; '.join(collapsed)}")
    if not main:
        return
    epoch = {"epoch": trainer.state.epoch} if train_metrics is not None and trainer.state.epoch else {}
    eval_only = {k: v for k, v in results.items() if k.startswith("eval_")}
    if eval_only:
        layout.atomic_write_json(folder / layout.EVAL_RESULTS_FILE, {**eval_only, **epoch})
    results.update(epoch)
    layout.atomic_write_json(folder / layout.RESULTS_FILE, results)  # LAST: marks the run complete
    logger.info(f"run complete: {folder}")
    if "wandb" in prep.args.report_to:
        report_to_wandb(prep, seed, folder, trainer.state.log_history if train_metrics is not None else [], results)


def report_to_wandb(prep, seed, folder, history, results):
    """--report_to wandb: this seed's W&B run, named <model alias>/<task>/seed<N>."""
    folder = Path(folder).resolve()
    alias = folder.parent.parent.name if folder.parent.name == prep.task.name else folder.parent.name
    group = prep.args.run_name or f"{alias}/{prep.task.name}"
    tracking.log_to_wandb(f"{group}/seed{seed}", group, layout.read_config(folder), history, results)

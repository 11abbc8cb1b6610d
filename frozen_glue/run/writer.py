"""The one writer of a run folder (docs/DESIGN.md): config.json first, then upstream's result files, the head, the
prediction dumps, and all_results.json last. Must not train, evaluate (evaluation.py) or decide paths (layout.py
names every file)."""

import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np
from safetensors.torch import save

from frozen_glue.config import adapters, contract
from frozen_glue.core import identity, layout, ranks
from frozen_glue.model import pooling
from frozen_glue.run import tracking

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
    # the Trainer path also runs models whose head the cache cannot run on stored features: their rule is unnamed
    rule = prep.pooling_rule if path == "cached" else prep.own_rule[0]
    ident = {"protocol_hash": contract.protocol_hash(prep.protocol), "model_fingerprint": prep.model_fp,
              "tokenizer_fingerprint": prep.tokenizer_fp, "data_fingerprints": prep.fingerprints}
    layout.atomic_write_json(folder / layout.CONFIG_FILE, {
        "format_version": layout.RUN_FORMAT_VERSION, "task": prep.task.name, "seed": seed, "path": path,
        "protocol": prep.protocol, "args": args, **ident,
        "identity_hash": identity.identity_hash(ident),
        "model_source": identity.source_stamp(*adapters.source_names(prep.model_args)),
        "adapter": getattr(prep.model, "adapter_info", None),  # a PEFT adapter merged into its base (adapters.py)
        **prep.provenance,
        "pooling": {"rule": rule, "position": pooling.pooled_position(rule, prep.model_args.append_eos),
                    "why": prep.pooling_reason(path),
                    "pad_token": prep.tokenizer.pad_token, "eos_token": prep.tokenizer.eos_token},
        # the cached path trains its heads in one process, also when the extraction was sharded over ranks
        "global_batch_size": prep.args.per_device_train_batch_size * prep.args.gradient_accumulation_steps
        * (1 if path == "cached" else prep.args.world_size),
        "extraction_ranks": ranks.world()[1] if path == "cached" else None,
        "max_samples": cuts or None, "cut_splits": prep.cut or None, "debug_run": bool(prep.cut),
        "start_time": prep.started,
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
    })


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


def finish(prep, seed, trainer, train_metrics, evaluated, head_state, save_model, extra=None):
    """After training and evaluation (train_metrics: None without --do_train; `evaluated`: the runner's
    evaluation.Evaluated): upstream's training files, the head, the prediction dumps and predict_results files,
    then all_results.json last (atomically), then W&B. The files and keys are upstream run_glue.py's; `extra` (the
    chosen head setting) goes into all_results.json."""
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
    results.update(evaluated.metrics)
    if not main:
        return
    for split, rows in evaluated.rows.items():
        layout.atomic_write_jsonl(folder / layout.predictions_file(split), rows)
    for split, logits in evaluated.test_logits.items():
        write_predict_results(folder, prep.task, split, prep.raw[split], logits)
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

"""The flag contract and a run's protocol, decided from the arguments alone: which TrainingArguments flags the cached
fast loop covers, which make it fall back to Trainer.train(), which change the base's features, which are refused;
and which arguments can change a run's numbers (its protocol and that protocol's hash; identity.py puts two
protocols' difference in words). Must not parse command lines (arguments.py) or raise for bad input (validation.py), and must not import
anything heavy at its top: identity.py and the analysis scripts load it."""

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

# --pooling X: the rule each choice names (auto, the default, is the model's own head: pooling.pooling_rule)
POOLING_RULES = {"last": "last_non_pad", "first": "first_token", "pooler": "pooler", "mean": "mean"}

# --------------------------------------------------------------------------------------------- flag contract
# Every TrainingArguments field falls in exactly one of these sets (tests/test_cli.py checks that none is
# forgotten). A flag set to a non-default value that is in neither FAST_LOOP nor NO_EFFECT makes the cached path
# train its heads with the Trainer instead of the fast loop; the reason is printed in one line.

# fields that change nothing the run computes (paths, logging, progress bars, loader workers, hub names)
NO_EFFECT = {
    "output_dir", "logging_strategy", "logging_steps", "logging_first_step", "log_on_each_node",
    "logging_nan_inf_filter", "log_level", "log_level_replica", "disable_tqdm", "report_to", "run_name", "project",
    "trackio_space_id", "trackio_bucket_id", "trackio_static_space_id", "include_num_input_tokens_seen",
    "skip_memory_metrics", "do_train", "do_eval", "do_predict", "use_cpu", "local_rank",
    "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers", "dataloader_prefetch_factor",
    "dataloader_multiprocessing_context", "dataloader_in_order", "remove_unused_columns", "label_names",
    "per_device_eval_batch_size", "eval_do_concat_batches", "eval_accumulation_steps", "eval_use_gather_object",
    "include_for_metrics", "batch_eval_metrics", "prediction_loss_only", "save_on_each_node", "save_only_model",
    "save_total_limit", "hub_token", "hub_private_repo", "hub_model_id", "hub_strategy", "hub_always_push",
    "hub_revision", "ddp_find_unused_parameters", "ddp_bucket_cap_mb", "ddp_broadcast_buffers", "ddp_static_graph",
    "ddp_backend", "ddp_timeout", "torch_empty_cache_steps", "debug", "full_determinism", "tf32",
    "accelerator_config", "use_cache", "eval_steps", "eval_delay", "save_steps", "metric_for_best_model",
    "greater_is_better", "ignore_data_skip", "restore_callback_states_from_checkpoint", "enable_jit_checkpoint",
    "gradient_checkpointing", "gradient_checkpointing_kwargs", "activation_checkpointing",
    "activation_checkpointing_kwargs", "deepspeed", "average_tokens_across_devices", "bf16_full_eval",
    "fp16_full_eval", "liger_kernel_config", "optim_target_modules", "length_column_name", "auto_find_batch_size",
}
# what the fast loop (frozen_glue/training/head_training.py) computes exactly as Trainer.train() does
FAST_LOOP = {
    "seed", "data_seed", "learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
    "max_grad_norm", "num_train_epochs", "max_steps", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps",
    "per_device_train_batch_size", "gradient_accumulation_steps", "label_smoothing_factor", "optim", "optim_args",
    "train_sampling_strategy", "dataloader_drop_last", "bf16",
}
# elementwise optimizers: one optimizer over the seeds' stacked weights equals one optimizer per seed
FAST_OPTIMIZERS = {"adamw_torch", "adamw_torch_fused", "sgd"}
# flags that change the frozen base's features during training: the cached path cannot serve them
CHANGES_FEATURES = {"neftune_noise_alpha": "NEFTune adds noise to the base's embeddings"}
# refused on both paths, with the alternative
REFUSED = {
    "push_to_hub": "not supported (a run's model is the unchanged base plus a few-KB head); upload the run "
                   "folder's head.safetensors and config.json yourself, e.g. with `hf upload`",
    "resume_from_checkpoint": "runs write no checkpoints (only the head, at the end); rerun the seed instead "
                              "(with --feature_cache a seed costs seconds)",
    "load_best_model_at_end": "would choose the epoch on the validation split that is then reported; keep "
                              "the final head, and use --eval_strategy epoch to watch validation scores",
}


def base_fixed(model_args) -> bool:
    """Whether the base computes the same function throughout training (frozen, in eval mode): the first condition
    of the cached path."""
    return model_args.freeze_base and not model_args.unfreeze_top_layers and not model_args.base_dropout


@functools.cache
def _defaults(cls):
    """The `cls` (arguments.FrozenTrainingArguments) a command line without training flags resolves to. Under torchrun
    transformers would warn that these defaults (no --use_cpu) do not describe the launch: they are only compared
    with, never used."""
    import logging

    from transformers import HfArgumentParser  # here, not at the top: identity.py and analysis/ import this module

    quiet = logging.getLogger("transformers.training_args")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return HfArgumentParser(cls).parse_args_into_dataclasses(args=["--output_dir", "x"])[0]
    finally:
        quiet.setLevel(level)


def changed_fields(args) -> dict:
    """{field: value} of the training arguments that differ from the defaults."""
    default = _defaults(type(args))
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(args)
            if f.init and getattr(args, f.name) != getattr(default, f.name)}


def fast_loop_fallback(args) -> str | None:
    """Why the cached path's heads must train under Trainer.train() instead of the fast loop, or None."""
    reasons = []
    for name, value in changed_fields(args).items():
        if name in NO_EFFECT:
            continue
        if name not in FAST_LOOP:
            reasons.append(f"--{name} {_show(value)}")
        elif name == "optim" and str(getattr(value, "value", value)) not in FAST_OPTIMIZERS:
            reasons.append(f"--optim {_show(value)} (not elementwise)")
        elif name == "lr_scheduler_type" and str(getattr(value, "value", value)) == "reduce_lr_on_plateau":
            reasons.append("--lr_scheduler_type reduce_lr_on_plateau (needs evaluation during training)")
    others = [r for r in args.report_to if r not in ("wandb", "none")]  # wandb: tracking.py, from the records
    if others:
        reasons.append(f"--report_to {' '.join(others)} (its callback reports during training)")
    return ", ".join(dict.fromkeys(reasons)) or None


def _show(value):
    return str(getattr(value, "value", value))


# ------------------------------------------------------------------------------------------------- protocol
# A run's protocol: every argument that can change its numbers. Not where things are (paths: the folder's alias
# names the model), not which seed, not how the run is launched, not what NO_EFFECT lists. Complete runs of one
# model x task must share it before a sweep skips them or a report averages them.
NOT_PROTOCOL = {
    "model_name_or_path", "adapter_base", "config_name", "tokenizer_name", "cache_dir", "token", "head_from", "save_full_model",
    "device_map", "max_memory", "offload_folder",
    "glue_dir", "dataset_name", "train_file", "validation_file", "test_file", "overwrite_cache",
    "seeds", "feature_cache", "verify_cache", "extraction_batch_size", "extraction_tokens_per_batch",
    "overwrite_output_dir", "seed",
    "zero_shot", "zero_shot_chat_template",  # a zero-shot run beside the probe changes none of the probe's numbers (its own protocol: zeroshot.py)
}


# arguments added after runs were recorded, with their defaults: a protocol leaves them out at the default, so that
# the protocol (and hash) of a run made before the flag existed still matches the one a sweep expects now
ADDED_LATER = {"base_dtype": "float32", "standardize_features": False, "probe_convex": False}


def protocol(model_args, data_args, study_args, training_args, deepspeed=None) -> dict:
    """{argument: value} of everything in the arguments that can change a run's numbers. `deepspeed`: the config
    the run uses (the sweep parses its commands without it, so that no distributed set-up starts)."""
    out = {}
    for group in (model_args, data_args, study_args):
        for f in dataclasses.fields(group):
            if f.name not in NOT_PROTOCOL:
                out[f.name] = getattr(group, f.name)
    for name, value in training_args.to_dict().items():
        if name not in NO_EFFECT and name not in NOT_PROTOCOL:
            out[name] = value
    # a DeepSpeed config that brings its own optimizer or schedule changes the numbers; one that leaves them to
    # the Trainer (ours) does not
    for name, default in ADDED_LATER.items():  # at the default, as every run made before the flag: theirs hold
        if name in out and out[name] == default:
            del out[name]
    deepspeed = deepspeed or training_args.deepspeed
    config = json.loads(Path(deepspeed).read_text()) if deepspeed else {}
    out["deepspeed"] = {k: config[k] for k in ("optimizer", "scheduler") if k in config} or None
    return json.loads(json.dumps(out, sort_keys=True, default=str))


def protocol_hash(proto: dict) -> str:
    return hashlib.sha256(json.dumps(proto, sort_keys=True).encode()).hexdigest()[:16]


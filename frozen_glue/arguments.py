"""The arguments of run_glue_frozen.py (upstream run_glue.py's dataclasses plus ours) and the flag contract:
which flags the cached fast loop covers, which make it fall back to the Trainer, which are refused.

Must not load data or models: everything here is decided from the arguments alone, before any work starts.
"""

import contextlib
import dataclasses
import difflib
import functools
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser, TrainingArguments

# transformers prints "[INFO] Running in WANDB offline mode" when its integrations are first imported (parsing
# arguments imports them) and WANDB_MODE is offline, whether or not anything reports to W&B: import them quietly
with contextlib.redirect_stdout(io.StringIO()):
    import transformers.integrations.integration_utils  # noqa: F401

from .errors import OneLineErrors, UserError
from .layout import check_writable


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Hub id (gpt2-xl) or local model dir. A causal-LM checkpoint "
                                              "(COMET-DISTIL, saved as GPT2LMHeadModel) gets a fresh head."})
    config_name: str | None = field(default=None, metadata={"help": "Config name or path, if not the model's."})
    tokenizer_name: str | None = field(default=None, metadata={
        "help": "Tokenizer name or dir, if not the model's (COMET-DISTIL ships a separate tokenizer dir; a "
                "tokenizer_config.json without tokenizer_class is fine)."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where hub downloads are stored."})
    use_fast_tokenizer: bool = field(default=True, metadata={"help": "Use a fast (tokenizers) tokenizer."})
    model_revision: str = field(default="main", metadata={"help": "Hub branch, tag or commit of the model."})
    token: str | None = field(default=None, metadata={"help": "Hub token for private models."})
    trust_remote_code: bool = field(default=False, metadata={
        "help": "Run model code from the hub repo. Off unless you trust that repo."})
    ignore_mismatched_sizes: bool = field(default=False, metadata={
        "help": "Load a checkpoint whose head has another number of labels (the head is re-initialised)."})
    freeze_base: bool = field(default=True, metadata={
        "help": "Freeze every parameter of model.base_model; only the head trains. false: train everything."})
    unfreeze_top_layers: int = field(default=0, metadata={
        "help": "With a frozen base, leave the top K transformer blocks trainable."})
    base_dropout: bool = field(default=False, metadata={
        "help": "Keep dropout active in the frozen base during training (the thesis' Trainer setup did, since "
                "Trainer puts the whole model in train mode). Default: frozen base in eval mode."})
    pad_token: str | None = field(default=None, metadata={
        "help": "Add this distinct pad token (e.g. '[PAD]') instead of the default pad = EOS."})
    append_eos: bool = field(default=False, metadata={"help": "Append the EOS token to every input."})
    save_full_model: bool = field(default=False, metadata={
        "help": "Also save the whole model (base + trained head) under <output_dir>/model (GBs for GPT-2 XL). "
                "Default: head only."})
    random_init: bool = field(default=False, metadata={
        "help": "Control: the same architecture and tokenizer with random weights (a fixed torch seed, the same "
                "for every seed), to see how much of a probe score is pretraining at all. Give it its own model "
                "alias."})
    device_map: str | None = field(default=None, metadata={
        "help": "Split a base too large for one GPU over the GPUs, the CPU and the disk for the cached path's "
                "frozen forward (accelerate's big-model inference): auto, balanced, balanced_low_0 or sequential. "
                "Needs --feature_cache; run it as one process (plain python)."})
    max_memory: list[str] | None = field(default=None, metadata={
        "help": "With --device_map: the most each device may hold, e.g. 0=70GiB 1=70GiB cpu=200GiB; what does not "
                "fit goes to --offload_folder."})
    offload_folder: str | None = field(default=None, metadata={
        "help": "With --device_map: where weights that fit nowhere else are offloaded (read back every forward)."})
    base_dtype: str = field(default="float32", metadata={
        "help": "float32 (as before: the checkpoint's weights as stored; GPT-2 XL's are float32) or bfloat16: hold "
                "the frozen base in bfloat16 (half the memory; the head stays float32). Needs the cached path; its "
                "features differ from float32's, so it is part of the cache key and the protocol."})
    head_from: str | None = field(default=None, metadata={
        "help": "Evaluate (--do_eval/--do_predict without --do_train) with the trained head of this run folder "
                "(its head.safetensors; with --seeds, <dir>/seed<N>/head.safetensors). The base model and "
                "tokenizer must be those the run used."})


@dataclass
class DataTrainingArguments:
    task_name: str | None = field(default=None, metadata={
        "help": "GLUE task: cola sst2 mrpc stsb qqp mnli qnli rte wnli."})
    glue_dir: str | None = field(default=None, metadata={
        "help": "Folder of the original GLUE release (CoLA/train.tsv, MNLI/dev_matched.tsv, ...)."})
    dataset_name: str | None = field(default=None, metadata={
        "help": "Hub dataset id or a local dataset repo folder with one config per task (default nyu-mll/glue)."})
    dataset_config_name: str | None = field(default=None, metadata={
        "help": "The dataset's config; default: the task name (the GLUE configs are named after the tasks)."})
    max_seq_length: int = field(default=128, metadata={
        "help": "Longest input after tokenization; longer ones are truncated."})
    overwrite_cache: bool = field(default=False, metadata={
        "help": "Re-extract cached features (the entry is rebuilt under the same key)."})
    pad_to_max_length: bool = field(default=False, metadata={
        "help": "Pad every input to max_seq_length (upstream's default). Default here: pad each batch to its "
                "longest input, which gives the same results far faster."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Debug: keep the first N train rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Debug: keep the first N eval rows."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Debug: first N test rows."})
    train_file: str | None = field(default=None, metadata={"help": "csv/json train file (task's text keys + label)."})
    validation_file: str | None = field(default=None, metadata={"help": "csv/json validation file."})
    test_file: str | None = field(default=None, metadata={"help": "csv/json test file (no labels needed)."})


@dataclass
class StudyArguments:
    seeds: list[int] | None = field(default=None, metadata={
        "help": "Run these seeds, one run folder each: <output_dir>/seed<N>. Default: --seed, into output_dir."})
    feature_cache: str | None = field(default=None, metadata={
        "help": "Feature cache dir: with the whole base frozen, extract base features once and train every "
                "seed's head from them."})
    feature_dtype: str = field(default="float32", metadata={
        "help": "float32 (exact parity with the Trainer path) or float16 (half the disk)."})
    verify_cache: str = field(default="stamp", metadata={
        "help": "stamp: a cache entry is hashed when written and when first read, then trusted while its file "
                "keeps the recorded size, mtime, ctime and inode; full: hash every entry on every load."})
    extraction_batch_size: int = field(default=64, metadata={"help": "Batch size of the feature extraction."})
    extraction_tokens_per_batch: int | None = field(default=None, metadata={
        "help": "Instead of a fixed batch size: length-sorted extraction batches of up to this many padded tokens "
                "(e.g. 65536 on a GPU: many short sentences per batch, fewer long pairs)."})
    probe_layers: list[str] | None = field(default=None, metadata={
        "help": "Also probe these layers from the same forward pass (needs --feature_cache): 'all', 'last', or "
                "indices such as 0 6 12 (0 = embeddings, 1..L = blocks; L is the model's own head input). Each "
                "seed folder gets layer_results.json; the run's own results stay the top layer's."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Replace a complete run in output_dir (refused otherwise)."})
    head_learning_rates: list[float] | None = field(default=None, metadata={
        "help": "Choose the head's learning rate from this grid (needs --feature_cache): every value x "
                "--head_weight_decays x seed trains on the train split minus a hold-out cut, the best mean hold-out "
                "main metric wins, and that setting retrains on the full train split. Default: --learning_rate."})
    head_weight_decays: list[float] | None = field(default=None, metadata={
        "help": "The weight-decay grid of that selection. Default: --weight_decay."})
    selection_fraction: float = field(default=0.1, metadata={
        "help": "The fixed, stratified share of the train split held out to choose the head setting (never the "
                "validation split)."})
    probe: str = field(default="head", metadata={
        "help": "head: the model's own classification head, trained as upstream. logistic: scikit-learn's "
                "logistic regression (ridge for STS-B) on the cached features, its regularisation chosen by 5-fold "
                "cross-validation on train (the convex probe of SentEval/MTEB; needs --feature_cache)."})
    pooling: str = field(default="auto", metadata={
        "help": "Which position(s) of the frozen base the head reads: auto (the model's own head: GPT-2 the last "
                "token, BERT the pooler, RoBERTa the first token), last, first, pooler (BERT-like models), or mean "
                "(the mean over the text's real tokens: the usual reading of a sentence encoder). Anything but auto "
                "needs --feature_cache. Part of the protocol and the cache key; both models of a comparison must use "
                "the same."})
    zero_shot: bool = field(default=False, metadata={
        "help": "Also score the validation rows zero-shot with lm-eval's GLUE prompt on the model's own causal-LM "
                "head, into <task folder>/zeroshot/ (needs --do_eval and lm-eval; not STS-B). Without --do_train "
                "or --head_from it runs alone: nothing is trained."})
    probe_mdl: bool = field(default=False, metadata={
        "help": "Online-code minimum description length of every probed layer and seed (Voita & Titov, 2020): "
                "mdl.json in each seed folder (needs --feature_cache and --do_train; classification tasks)."})
    probe_control: bool = field(default=False, metadata={
        "help": "Selectivity (Hewitt & Liang, 2019): the same heads also trained on control labels (a hash of "
                "the text through the train label prior); selectivity.json in each seed folder (needs "
                "--feature_cache and --do_train)."})


@dataclass
class FrozenTrainingArguments(TrainingArguments):
    # a frozen base needs no checkpoints: the head is saved at the end (a few KB), never a 6 GB model
    save_strategy: str = field(default="no", metadata={
        "help": "Checkpoint strategy (default no: only head.safetensors is written at the end)."})
    report_to: None | str | list[str] = field(default="none", metadata={
        "help": "Integrations to report to, e.g. wandb (WANDB_MODE=offline works). Default: none."})
    output_dir: str | None = field(default=None, metadata={"help": "The run folder (or the seeds' parent)."})


GROUPS = (ModelArguments, DataTrainingArguments, StudyArguments, FrozenTrainingArguments)


class Parser(OneLineErrors, HfArgumentParser):
    """HfArgumentParser whose argparse errors are one line (UserError) instead of usage text + exit."""

    command = "python run_glue_frozen.py"


def _unknown_flags(rest, parser):
    known = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    flags = [r for r in rest if r.startswith("-")] or rest
    hints = []
    for flag in flags:
        close = difflib.get_close_matches(flag.split("=")[0], known, n=1, cutoff=0.75)
        hints.append(f"{flag} (did you mean {close[0]}?)" if close else flag)
    return parser.usage_error(f"unknown argument(s): {', '.join(hints)}")


def parse_args(argv):
    """(model, data, study, training) arguments from a command line or one .json file, validated."""
    parser = Parser(GROUPS)
    for flag, why in REFUSED.items():  # before parsing: TrainingArguments may reject their combinations less clearly
        if flag_set(argv, flag):
            raise UserError(f"--{flag}: {why}")
    if flag_set(argv, "device_map") and int(os.environ.get("WORLD_SIZE", "1")) > 1:  # before any process group
        raise UserError("--device_map splits one model over this machine's devices from one process; launch with "
                        "plain python, not torchrun or the deepspeed launcher")
    deepspeed = flag_value(argv, "deepspeed")
    if isinstance(deepspeed, str):  # TrainingArguments reads the file while parsing: check it first, to name what is wrong
        from .ds_config import validate_ds_config

        validate_ds_config(deepspeed, "--deepspeed")
    try:
        if args_file(argv):
            data = read_args_file(argv[0])
            unknown = set(data) - {f.name for g in GROUPS for f in dataclasses.fields(g)}
            if unknown:
                raise _unknown_flags([f"--{k}" for k in sorted(unknown)], parser)
            parsed = parser.parse_dict(data)
        else:
            *parsed, rest = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
            if rest:
                raise _unknown_flags(rest, parser)
    except (ValueError, OSError, TypeError) as e:  # TrainingArguments.__post_init__ rejects bad combinations
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"invalid arguments: {first}") from None
    validate(*parsed)
    return tuple(parsed)


def validate(model_args, data_args, study_args, args):
    """Every check that needs only the arguments: done before any data or model is loaded."""
    if not data_args.task_name:
        raise UserError("--task_name is required: one of cola sst2 mrpc stsb qqp mnli qnli rte wnli")
    if not args.output_dir:
        raise UserError("--output_dir is required (e.g. runs/<model>/<task>/seed<N>)")
    if Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        raise UserError(f"--output_dir {args.output_dir} is a file; give a folder (it is created if missing)")
    check_writable(args.output_dir, "--output_dir")  # before config.json: a run that cannot write leaves nothing
    if study_args.feature_cache:
        check_writable(study_args.feature_cache, "--feature_cache")
    if not (args.do_train or args.do_eval or args.do_predict):
        raise UserError("nothing to do: pass --do_train, --do_eval and/or --do_predict")
    for name in ("max_train_samples", "max_eval_samples", "max_predict_samples", "max_seq_length"):
        value = getattr(data_args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name} {value}: give a positive number")
    if study_args.zero_shot:
        validate_zero_shot(data_args, args)
    if not zero_shot_only(model_args, study_args, args):  # a zero-shot-only run trains no probe: its flags idle
        validate_study(model_args, study_args, args)
    if data_args.glue_dir and (data_args.train_file or data_args.validation_file or data_args.test_file):
        raise UserError("--glue_dir and --train_file/--validation_file/--test_file name two data sources; "
                        "pass one of them")
    if data_args.dataset_name and (data_args.glue_dir or data_args.train_file or data_args.validation_file):
        raise UserError("--dataset_name and --glue_dir/--train_file name two data sources; pass one of them")
    wanted = [r for r in args.report_to if r != "none"]
    if wanted:
        from transformers.integrations import get_available_reporting_integrations

        missing = [r for r in wanted if r not in get_available_reporting_integrations()]
        if missing:
            raise UserError(f"--report_to {' '.join(missing)}: not installed here (pip install {missing[0]}), or "
                            f"drop it; W&B is installed with the requirements")
    if model_args.head_from and args.do_train:
        raise UserError("--head_from evaluates a trained head; with --do_train the head is trained anew. "
                        "Drop one of them")


def zero_shot_only(model_args, study_args, args) -> bool:
    """--zero_shot without a probe to train (--do_train) or evaluate (--head_from): only the zero-shot run."""
    return study_args.zero_shot and not args.do_train and not model_args.head_from


def validate_zero_shot(data_args, args):
    """--zero_shot's checks that need only the arguments (the model's causal-LM head: zeroshot.check_model)."""
    import importlib.util

    if data_args.task_name.lower() == "stsb":
        raise UserError("--zero_shot: lm-eval has no zero-shot STS-B task (a similarity score is not a choice "
                        "between answers); drop --zero_shot for stsb")
    if not args.do_eval:
        raise UserError("--zero_shot scores the validation rows: add --do_eval")
    if importlib.util.find_spec("lm_eval") is None:
        raise UserError("--zero_shot needs lm-eval, which is not installed here: pip install lm-eval==0.4.13 "
                        "(pinned in requirements.txt)")


def validate_study(model_args, study_args, args):
    """The checks of our own study flags: the feature cache, probed layers, head grids and probes."""
    validate_device_map(model_args, study_args)
    if study_args.feature_dtype not in ("float32", "float16"):
        raise UserError(f"--feature_dtype {study_args.feature_dtype}: use float32 or float16")
    if study_args.verify_cache not in ("stamp", "full"):
        raise UserError(f"--verify_cache {study_args.verify_cache}: use stamp or full")
    validate_base_dtype(model_args, study_args)
    if study_args.probe_layers:
        if not study_args.feature_cache:
            raise UserError("--probe_layers needs --feature_cache DIR (layers are probed from cached features)")
        spec = study_args.probe_layers
        if not (spec in (["all"], ["last"]) or all(s.lstrip("-").isdigit() for s in spec)):
            raise UserError(f"--probe_layers {' '.join(spec)}: give 'all', 'last' or layer indices such as 0 6 12")
    grid = (study_args.head_learning_rates or []) + (study_args.head_weight_decays or [])
    if grid or study_args.probe != "head":
        what = "--probe logistic" if study_args.probe != "head" else "--head_learning_rates/--head_weight_decays"
        if not study_args.feature_cache:
            raise UserError(f"{what} needs --feature_cache DIR (it trains many heads on cached features)")
        if not args.do_train:
            raise UserError(f"{what} trains heads: add --do_train")
    if study_args.pooling not in POOLING_CHOICES:
        raise UserError(f"--pooling {study_args.pooling}: use one of {', '.join(POOLING_CHOICES)}")
    if study_args.pooling != "auto" and not study_args.feature_cache:
        raise UserError(f"--pooling {study_args.pooling} reads other positions than the model's own head, which only "
                        f"the cached path can: add --feature_cache DIR (or use --pooling auto)")
    for flag in ("probe_mdl", "probe_control"):
        cached_heads = study_args.feature_cache and args.do_train and study_args.probe == "head"
        if getattr(study_args, flag) and not cached_heads:
            raise UserError(f"--{flag} trains the run's heads on cached features: it needs --feature_cache DIR, "
                            f"--do_train and --probe head")
    if study_args.probe not in ("head", "logistic"):
        raise UserError(f"--probe {study_args.probe}: use head or logistic")
    if any(v <= 0 for v in study_args.head_learning_rates or []) or \
            any(v < 0 for v in study_args.head_weight_decays or []):
        raise UserError("--head_learning_rates takes positive numbers and --head_weight_decays numbers >= 0, "
                        "e.g. --head_learning_rates 1e-4 1e-3 1e-2 --head_weight_decays 0 0.01")
    if study_args.probe != "head" and model_args.save_full_model:
        raise UserError("--save_full_model saves a transformers model with its own head; --probe logistic has no "
                        "such head (its coefficients are in head.safetensors): drop one of them")
    if grid and study_args.probe != "head":
        raise UserError("--probe logistic chooses its own regularisation; drop --head_learning_rates/"
                        "--head_weight_decays")
    if not 0 < study_args.selection_fraction <= 0.5:
        raise UserError(f"--selection_fraction {study_args.selection_fraction}: give a share of train rows in (0, 0.5]")
    if study_args.extraction_tokens_per_batch is not None and study_args.extraction_tokens_per_batch < 1:
        raise UserError(f"--extraction_tokens_per_batch {study_args.extraction_tokens_per_batch}: give a positive "
                        f"number of tokens")
    if study_args.extraction_batch_size < 1:
        raise UserError(f"--extraction_batch_size {study_args.extraction_batch_size}: give a positive number")


DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
POOLING_CHOICES = ("auto", "last", "first", "pooler", "mean")  # pooling.py maps them to rules


def base_fixed(model_args) -> bool:
    """Whether the base computes the same function throughout training (frozen, in eval mode): the first condition
    of the cached path."""
    return model_args.freeze_base and not model_args.unfreeze_top_layers and not model_args.base_dropout


def validate_device_map(model_args, study_args):
    """--device_map splits the frozen base for the cached path's forward; nothing else may need the whole model
    (under a multi-process launcher it is refused by parse_args, before the process group starts)."""
    if not model_args.device_map:
        if model_args.max_memory or model_args.offload_folder:
            raise UserError("--max_memory/--offload_folder place a split model: add --device_map auto")
        return
    if model_args.device_map not in DEVICE_MAPS:
        raise UserError(f"--device_map {model_args.device_map}: use {', '.join(DEVICE_MAPS)}")
    if not study_args.feature_cache:
        raise UserError("--device_map splits the frozen base for the cached path's forward; add --feature_cache DIR "
                        "(the Trainer path trains the model as one piece: drop --device_map there)")
    if model_args.random_init or model_args.save_full_model:
        flag = "--random_init" if model_args.random_init else "--save_full_model"
        raise UserError(f"{flag} needs the whole model in one place; drop --device_map for it")
    for item in model_args.max_memory or []:
        device, sep, amount = item.partition("=")
        if not sep or not amount or not (device.isdigit() or device in ("cpu", "mps")):
            raise UserError(f"--max_memory {item}: give DEVICE=AMOUNT pairs such as 0=70GiB cpu=200GiB")


def validate_base_dtype(model_args, study_args):
    """--base_dtype bfloat16 holds the frozen base for the cached path's forward only: a Trainer-path model would feed
    bfloat16 hidden states to a float32 head (refused here when no cache is given, in run.execute when the cache
    cannot serve the run)."""
    if model_args.base_dtype not in ("float32", "bfloat16"):
        raise UserError(f"--base_dtype {model_args.base_dtype}: use float32 or bfloat16")
    if model_args.base_dtype == "bfloat16" and not study_args.feature_cache:
        raise UserError("--base_dtype bfloat16 holds the frozen base for the cached path's forward; add "
                        "--feature_cache DIR (on the Trainer path use --bf16 autocast instead)")


def args_file(argv) -> bool:
    """Whether a command line is one .json args file (all flags as {flag: value}, as upstream run_glue.py reads)."""
    return len(argv) == 1 and argv[0].endswith(".json")


def read_args_file(path) -> dict:
    """The {flag: value} of a .json args file; a UserError when it is missing, not JSON or not one object."""
    if not Path(path).is_file():
        raise UserError(f"args file {path} does not exist")
    try:
        data = json.loads(Path(path).read_text())
    except ValueError as e:
        raise UserError(f"args file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise UserError(f"args file {path} must hold one JSON object of flag: value")
    return data


def flag_set(argv, name) -> bool:
    """Whether a command line (or .json args file) sets --name to anything but false."""
    return flag_value(argv, name) not in (None, False, "false", "False", "0", "no")


def flag_value(argv, name):
    """The value of --name in a command line (or in the one .json args file) without parsing the rest: None when
    absent, True for a bare boolean flag."""
    if args_file(argv):
        try:
            return read_args_file(argv[0]).get(name)
        except (OSError, UserError):
            return None
    for i, arg in enumerate(argv):
        if arg == f"--{name}":
            return argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else True
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


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
# what the fast loop (frozen_glue/head_training.py) computes exactly as Trainer.train() does
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


@functools.cache
def _defaults():
    """The TrainingArguments a command line without training flags resolves to. Under torchrun transformers would
    warn that these defaults (no --use_cpu) do not describe the launch: they are only compared with, never used."""
    import logging

    quiet = logging.getLogger("transformers.training_args")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return Parser(FrozenTrainingArguments).parse_args_into_dataclasses(args=["--output_dir", "x"])[0]
    finally:
        quiet.setLevel(level)


def changed_fields(args) -> dict:
    """{field: value} of the training arguments that differ from the defaults."""
    default = _defaults()
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


def check_against_task(args, task, study_args=None):
    """Checks that need the task (regression or not)."""
    if study_args is not None and study_args.probe_mdl and task.is_regression:
        raise UserError(f"--probe_mdl: {task.name} is a regression task (the online code sends class labels); drop "
                        f"--probe_mdl for {task.name}")
    if args.label_smoothing_factor and task.is_regression:
        raise UserError(f"--label_smoothing_factor: {task.name} is a regression task (no classes to smooth); "
                        f"drop the flag for {task.name}")


# ------------------------------------------------------------------------------------------------- protocol
# A run's protocol: every argument that can change its numbers. Not where things are (paths: the folder's alias
# names the model), not which seed, not how the run is launched, not what NO_EFFECT lists. Complete runs of one
# model x task must share it before a sweep skips them or a report averages them.
NOT_PROTOCOL = {
    "model_name_or_path", "config_name", "tokenizer_name", "cache_dir", "token", "head_from", "save_full_model",
    "device_map", "max_memory", "offload_folder",
    "glue_dir", "dataset_name", "train_file", "validation_file", "test_file", "overwrite_cache",
    "seeds", "feature_cache", "verify_cache", "extraction_batch_size", "extraction_tokens_per_batch",
    "overwrite_output_dir", "seed",
    "zero_shot",  # a zero-shot run beside the probe changes none of the probe's numbers (its own protocol: zeroshot.py)
}


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
    if out.get("base_dtype") == "float32":  # the default, as every run made before the flag: their protocols hold
        del out["base_dtype"]
    deepspeed = deepspeed or training_args.deepspeed
    config = json.loads(Path(deepspeed).read_text()) if deepspeed else {}
    out["deepspeed"] = {k: config[k] for k in ("optimizer", "scheduler") if k in config} or None
    return json.loads(json.dumps(out, sort_keys=True, default=str))

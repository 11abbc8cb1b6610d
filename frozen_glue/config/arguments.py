"""The arguments of run_glue_frozen.py (upstream run_glue.py's dataclasses plus ours) and reading a command line (or
its one .json args file) into them: parse_args, and flag_value / flag_set for the few flags needed before parsing.
Must not load data or models, decide which flags are allowed (contract.py) or which combinations are (validation.py).
"""

import contextlib
import dataclasses
import difflib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser, TrainingArguments

# transformers prints "[INFO] Running in WANDB offline mode" when its integrations are first imported (parsing
# arguments imports them) and WANDB_MODE is offline, whether or not anything reports to W&B: import them quietly
with contextlib.redirect_stdout(io.StringIO()):
    import transformers.integrations.integration_utils  # noqa: F401

from frozen_glue.config.contract import REFUSED
from frozen_glue.config.validation import validate
from frozen_glue.core import ranks
from frozen_glue.core.errors import OneLineErrors, UserError

DOCS = "the flags and what each path does with them: docs/flags.md"  # the end of --help


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Hub id (gpt2-xl) or local model dir. A causal-LM checkpoint "
                                              "(COMET-DISTIL, saved as GPT2LMHeadModel) gets a fresh head. A PEFT "
                                              "adapter dir (adapter_config.json) is its base with the adapter merged."})
    adapter_base: str | None = field(default=None, metadata={
        "help": "With an adapter dir as the model: a local copy of its base, when adapter_config.json's "
                "base_model_name_or_path is a hub id (default: that base)."})
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
    zero_shot_chat_template: bool = field(default=False, metadata={
        "help": "With --zero_shot: wrap each prompt in the tokenizer's chat template (lm-eval's "
                "apply_chat_template), for instruction-tuned models; recorded in the zero-shot protocol. A tokenizer "
                "without a template is refused, and the report compares a pair only when both were scored alike."})
    probe_mdl: bool = field(default=False, metadata={
        "help": "Online-code minimum description length of every probed layer and seed (Voita & Titov, 2020): "
                "mdl.json in each seed folder (needs --feature_cache and --do_train; classification tasks)."})
    probe_control: bool = field(default=False, metadata={
        "help": "Selectivity (Hewitt & Liang, 2019): the same heads also trained on control labels (each word "
                "type a fixed random value, a text's label its types' mean through the train label prior, so a "
                "probe scores on validation only by memorising types); selectivity.json in each seed folder (needs "
                "--feature_cache and --do_train)."})
    standardize_features: bool = field(default=False, metadata={
        "help": "Cached path: the head reads each feature dimension centred and scaled by the train rows' mean and "
                "std (no labels used; kept beside the head in head.safetensors as standardize.mean / "
                "standardize.scale). Lower layers' features vary little around a large mean, and an AdamW head on "
                "them barely leaves the class prior. The Trainer path feeds the head the base's raw output: needs "
                "--feature_cache."})
    probe_convex: bool = field(default=False, metadata={
        "help": "Also fit --probe logistic's convex probe on the same cached features at every probed layer and "
                "score it on validation beside the trained head: convex.json in each seed folder, and the report "
                "flags a layer where the head trails it by more than 0.05 (an under-trained head, not a model that "
                "does not know). Needs --feature_cache, --do_train and --do_eval."})


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
    parser = Parser(GROUPS, epilog=DOCS)
    for flag, why in REFUSED.items():  # before parsing: TrainingArguments may reject their combinations less clearly
        if flag_set(argv, flag):
            raise UserError(f"--{flag}: {why}")
    if flag_set(argv, "device_map") and ranks.world()[1] > 1:  # before any process group
        raise UserError("--device_map splits one model over this machine's devices from one process; launch with "
                        "plain python, not torchrun or the deepspeed launcher")
    deepspeed = flag_value(argv, "deepspeed")
    if isinstance(deepspeed, str):  # TrainingArguments reads the file while parsing: check it first, to name what is wrong
        from frozen_glue.config.ds_config import validate_ds_config

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

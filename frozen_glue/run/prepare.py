"""Preparation of one model x task invocation: data, tokenizer, model and the heads to evaluate, gathered into one
frozen `Prepared`. Must not train, evaluate or write run folders (runners.py and writer.py do)."""

import contextlib
import copy
import dataclasses
import functools
import logging
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import DataCollatorWithPadding, TrainingArguments

from frozen_glue.config import arguments, contract, validation
from frozen_glue.core import compat, layout, provenance
from frozen_glue.core.errors import UserError
from frozen_glue.core.tasks import Task, get_task
from frozen_glue.features.data import load_splits
from frozen_glue.model import fingerprinting, freezing, loading, pooling
from frozen_glue.model.heads import head_modules, init_head, load_head

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What every seed of a run shares. Frozen: runners read it, nothing reassigns it (the model's weights stay the
    frozen base; heads are copied or re-initialised per seed)."""

    model_args: arguments.ModelArguments
    data_args: arguments.DataTrainingArguments
    study_args: arguments.StudyArguments
    args: TrainingArguments
    task: Task
    folders: dict            # {seed: run folder}
    raw: dict                # {split: datasets.Dataset of the rows used}
    fingerprints: dict       # {split: fingerprint of those rows}
    cut: dict                # {split: "n of N rows"} for the splits a max_*_samples cut shortened
    train_labels: list | None  # the train split's labels (also for eval-only runs: the majority control)
    config: object
    tokenizer: object
    tokenizer_fp: str
    tokenized: dict          # {split: model inputs}
    collator: DataCollatorWithPadding
    model: torch.nn.Module
    model_fp: str
    saved_heads: dict        # {seed: {None: the head, layer: that layer's}} when evaluating saved heads; {} otherwise
    protocol: dict
    fast_loop_fallback: str | None  # why cached heads train under Trainer.train(), or None
    trained_pooling: tuple   # (rule or None, why): the pooling the model was trained for (loading.trained_pooling)
    provenance: dict         # versions and git commit, read once
    started: str

    @property
    def seeds(self):
        return list(self.folders)

    def new_model(self):
        """A fresh copy of the model as loaded (for Trainer-path seeds whose base trains)."""
        return load_frozen_model(self.model_args, self.config, self.tokenizer)[0]

    def init_heads(self, heads: dict, seed, layer=None):
        """Set the head modules for a seed (and probed layer): the seed's init when training, the saved head (that
        layer's) when evaluating one."""
        if self.args.do_train:
            init_head(heads.values(), self.config, seed)
        elif self.saved_heads:
            saved = self.saved_heads[seed]
            load_head(heads, saved.get(layer, saved[None]), f"--head_from {self.model_args.head_from}")

    @functools.cached_property
    def own_rule(self) -> tuple:
        """(rule or None, why): where the model's own head reads, found by running it once (pooling.own_rule)."""
        return pooling.own_rule(self.model)

    @property
    def pooling_rule(self) -> str:
        """Where the cached path's head reads (pooling.pooling_rule of --pooling, the model's own head and its trained
        pooling)."""
        return pooling.pooling_rule(self.config, self.own_rule, self.study_args.pooling, self.trained_pooling[0])

    def pooling_reason(self, path: str) -> str:
        """Why the heads of `path` (cached | trainer) read where they do, in words (config.json, run.log)."""
        if self.study_args.pooling != "auto":
            return f"--pooling {self.study_args.pooling}"
        if path == "trainer":
            return "the model's own head (the Trainer path runs the whole model)"
        return f"--pooling auto: {self.trained_pooling[1]}"

    def seed_args(self, seed, folder):
        """The Trainer's arguments for one seed. W&B is left to tracking.py (one W&B run per seed, both paths): the
        Trainer's own callback would put every seed of this process into one W&B run."""
        return dataclasses.replace(self.args, seed=seed, output_dir=str(folder),
                                   report_to=[r for r in self.args.report_to if r != "wandb"] or "none")

    @property
    def precision(self):
        return torch.bfloat16 if self.args.bf16 else torch.float16 if self.args.fp16 else None


def tokenize(splits, task, tokenizer, data_args, model_args):
    """Tokenize without padding (the collator pads per batch or to max_seq_length)."""
    eos = tokenizer.eos_token_id
    limit = data_args.max_seq_length - (1 if model_args.append_eos else 0)

    def encode(batch):
        enc = tokenizer(*(batch[k] for k in task.text_keys), truncation=True, max_length=limit)
        if model_args.append_eos:
            enc["input_ids"] = [ids + [eos] for ids in enc["input_ids"]]
            enc["attention_mask"] = [m + [1] for m in enc["attention_mask"]]
            if "token_type_ids" in enc:
                enc["token_type_ids"] = [t + t[-1:] for t in enc["token_type_ids"]]
        return enc

    return {name: ds.map(encode, batched=True, desc=f"tokenize {name}") for name, ds in splits.items()}


def model_inputs(ds, labelled=True):
    keep = {"input_ids", "attention_mask", "token_type_ids"} | ({"label"} if labelled else set())
    return ds.remove_columns([c for c in ds.column_names if c not in keep])


def load_tokenizer(model_args, config):
    """The tokenizer with its pad token settled (loading.ensure_pad_token)."""
    tokenizer = loading.load_tokenizer(model_args, config)
    pad_before = tokenizer.pad_token
    loading.ensure_pad_token(tokenizer, model_args.pad_token, model_args.append_eos)
    if model_args.append_eos and tokenizer.pad_token != pad_before and not model_args.pad_token:
        logger.info(f"--append_eos: the pad token is now a distinct {tokenizer.pad_token} (it was "
                    f"{pad_before or 'unset'}), so that the head reads the appended EOS")
    return tokenizer


def load_frozen_model(model_args, config, tokenizer, whole=False):
    """(model with its base frozen as asked, whether the checkpoint held a trained head). `whole`: loaded whole even
    when a ZeRO-3 --deepspeed config is active (the cached path runs the base forward itself; ZeRO-3 would load it
    partitioned over the ranks)."""
    with compat.no_hf_deepspeed_config() if whole else contextlib.nullcontext():
        model, head_loaded = loading.load_model(model_args, config, tokenizer)
    freezing.freeze(model, model_args.freeze_base, model_args.unfreeze_top_layers, model_args.base_dropout)
    return model, head_loaded


def resolve_heads(model_args, args, head_loaded, read):
    """{seed: head tensors} to evaluate with when nothing trains; {} when heads start from the seed (training) or
    stay as the checkpoint loaded them. `read()` reads every seed's --head_from head."""
    name = model_args.model_name_or_path
    if args.do_train:
        if head_loaded:
            logger.info(f"{name} holds a trained classification head; --do_train starts a new head from the seed "
                        f"(the checkpoint's head is not used)")
        return {}
    if model_args.head_from:
        return read()
    if head_loaded:
        logger.info(f"evaluating the classification head saved in {name}")
        return {}
    raise UserError(f"{name} has no trained classification head (a new one would be random); to evaluate a head "
                    f"trained with this tool pass --head_from <run folder>, or add --do_train")


def read_head(root, seed, task, model, model_fp, tokenizer_fp, layers=(), standardize=False):
    """The head of a run folder of ours, after checking it was trained on this very base, tokenizer and task:
    {None: its head} plus {layer: that layer's head} for each of `layers` (--probe_layers; refused when the run
    did not save them)."""
    root = Path(root)
    folder = root if (root / layout.HEAD_FILE).is_file() else layout.seed_dir(root, seed)
    path = folder / layout.HEAD_FILE
    if not path.is_file():
        raise UserError(f"--head_from {root}: no {layout.HEAD_FILE} there (nor in seed{seed}/); give a run folder "
                        f"written by a --do_train run")
    config = layout.read_config(folder)
    if not config:
        raise UserError(f"--head_from {folder}: its {layout.CONFIG_FILE} is missing or unreadable, so the base it "
                        f"was trained on is unknown")
    for what, ours in (("model", model_fp), ("tokenizer", tokenizer_fp)):
        theirs = str(config.get(f"{what}_fingerprint"))
        if theirs != ours:
            raise UserError(f"--head_from {folder} was trained on another {what} ({what} fingerprint "
                            f"{theirs[:12]}…, this run's {ours[:12]}…); use the {what} that run used")
    if config.get("task") != task.name:
        raise UserError(f"--head_from {folder} is a {config.get('task')} run; this run is {task.name}")
    heads = {None: load_file(path)}
    if layers:
        saved = load_file(folder / layout.LAYER_HEADS_FILE) if (folder / layout.LAYER_HEADS_FILE).is_file() else {}
        for layer in layers:
            prefix = f"layer{layer}."
            heads[layer] = {k[len(prefix):]: v for k, v in saved.items() if k.startswith(prefix)}
        missing = [str(layer) for layer in layers if not heads[layer]]
        if missing:
            raise UserError(f"--head_from {folder} holds no head for layer(s) {', '.join(missing)} (its "
                            f"{layout.LAYER_HEADS_FILE} has the layers its --probe_layers run trained); evaluate "
                            f"those layers' heads from a run that probed them, or drop --probe_layers")
    standardized = bool(config.get("protocol", {}).get("standardize_features"))
    if standardized != standardize:
        raise UserError(f"--head_from {folder} was trained {'with' if standardized else 'without'} "
                        f"--standardize_features: evaluate it {'with' if standardized else 'without'} it too")
    for state in heads.values():
        own = {k: v for k, v in state.items() if not k.startswith("standardize.")}
        load_head(copy.deepcopy(head_modules(model)), own, f"--head_from {path}")
    return heads


def prepare(model_args, data_args, study_args, training_args) -> Prepared:
    """Check the arguments against the task and the run folders, then load data, tokenizer and model."""
    task = get_task(data_args.task_name)
    validation.check_against_task(training_args, task, study_args)
    # decided before any Trainer exists: resolving the default arguments resets accelerate's state
    fallback = contract.fast_loop_fallback(training_args)
    folders = layout.seed_folders(training_args.output_dir, study_args.seeds, training_args.seed)
    complete = [str(f) for f in folders.values() if layout.is_complete(f)]
    if complete and not study_args.overwrite_output_dir:
        raise UserError(f"{', '.join(complete)} already hold(s) a complete run; pass --overwrite_output_dir to "
                        f"replace it, or choose another --output_dir")
    if (training_args.bf16 or training_args.fp16) and not torch.cuda.is_available():
        logger.warning(f"--{'bf16' if training_args.bf16 else 'fp16'} without a GPU: autocast on the CPU is slower "
                       f"than float32 and changes the numbers; drop the flag on CPU")
    raw, fingerprints, cut, train_labels = load_splits(task, data_args, training_args, model_args.cache_dir)
    config = loading.load_config(model_args, task)
    positions = loading.max_positions(config)
    if positions and data_args.max_seq_length > positions:
        raise UserError(f"--max_seq_length {data_args.max_seq_length} exceeds the model's {positions} positions; "
                        f"use --max_seq_length {positions} or less")
    tokenizer = load_tokenizer(model_args, config)
    tokenized = {k: model_inputs(v, labelled=not k.startswith("test"))
                 for k, v in tokenize(raw, task, tokenizer, data_args, model_args).items()}
    pad_to_max = data_args.pad_to_max_length
    collator = DataCollatorWithPadding(tokenizer, padding="max_length" if pad_to_max else "longest",
                                       max_length=data_args.max_seq_length if pad_to_max else None)
    model, head_loaded = load_frozen_model(model_args, config, tokenizer,
                                           whole=bool(study_args.feature_cache) and contract.base_fixed(model_args))
    model_fp, tokenizer_fp = fingerprinting.model_fingerprint(model), fingerprinting.tokenizer_fingerprint(tokenizer)
    saved_heads = resolve_heads(model_args, training_args, head_loaded, lambda: {
        seed: read_head(model_args.head_from, seed, task, model, model_fp, tokenizer_fp, layers=pooling.probed_layers(
            study_args.probe_layers, config, model_args.model_name_or_path) if study_args.probe_layers else (),
            standardize=study_args.standardize_features)
        for seed in folders})
    return Prepared(
        model_args=model_args, data_args=data_args, study_args=study_args, args=training_args, task=task,
        folders=folders, raw=raw, fingerprints=fingerprints, cut=cut, train_labels=train_labels, config=config,
        tokenizer=tokenizer, tokenizer_fp=tokenizer_fp, tokenized=tokenized, collator=collator, model=model, model_fp=model_fp,
        saved_heads=saved_heads, protocol=contract.protocol(model_args, data_args, study_args, training_args),
        fast_loop_fallback=fallback, trained_pooling=loading.trained_pooling(model_args),
        provenance={"versions": provenance.versions(), "git_commit": provenance.git_commit()},
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))

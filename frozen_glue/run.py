"""One model x one task x one or many seeds: the core of run_glue_frozen.py (Trainer path or cached path), writing
the run folders of docs/DESIGN.md. Must not decide flag policy (arguments.py) or the folder layout (layout.py).
"""

import contextlib
import copy
import dataclasses
import io
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

# transformers prints "[INFO] Running in WANDB offline mode" when its integrations are imported and WANDB_MODE is
# offline, whether or not the run reports to W&B; keep W&B silent unless --report_to wandb
with contextlib.redirect_stdout(io.StringIO()):
    from transformers import DataCollatorWithPadding, Trainer, set_seed

from . import arguments, diagnostics, head_training, layout, modeling, tracking
from . import cache as feature_cache
from .data import load_glue, rows_digest, select_rows
from .errors import UserError, run_cli
from .tasks import compute_metrics, get_task

logger = logging.getLogger("frozen_glue")


# ---------------------------------------------------------------------------------------------------- data


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


# ------------------------------------------------------------------------------------------------- outputs


def eval_outputs(task, split, raw, prediction_output):
    """(metrics with upstream key names, prediction rows) for one evaluated split."""
    logits = np.asarray(prediction_output.predictions)
    raw = raw.to_dict()  # plain lists: datasets' column objects are slow to index one row at a time
    labels = np.asarray(raw["label"])
    suffix = task.metric_suffix(split)
    if task.is_regression:
        scores = logits.reshape(-1)
        predictions = scores
    else:
        probs = torch.softmax(torch.from_numpy(logits).float(), dim=-1).numpy()
        predictions = logits.argmax(-1)
    metrics = {f"eval_{k}{suffix}": v for k, v in compute_metrics(task, predictions, labels).items()}
    loss = prediction_output.metrics.get("eval_loss")
    if loss is not None:
        metrics[f"eval_loss{suffix}"] = loss
    metrics[f"eval_samples{suffix}"] = len(labels)
    rows = []
    for i in range(len(labels)):
        row = {"idx": int(raw["idx"][i]), "label": raw["label"][i]}
        if task.is_regression:
            row.update(prediction=float(scores[i]), score=float(scores[i]))
        else:
            row.update(prediction=int(predictions[i]), probs=[round(float(p), 6) for p in probs[i]])
        row.update({k: raw[k][i] for k in task.text_keys})
        rows.append(row)
    return metrics, rows


def write_predict_results(folder, task, split, raw, logits):
    """Upstream's predict_results_<task>.txt (MNLI mismatched: predict_results_mnli-mm.txt)."""
    name = f"predict_results_{task.name}{'-mm' if split.endswith('_mismatched') else ''}.txt"
    logits = np.asarray(logits)
    lines = ["index\tprediction"]
    for i, idx in enumerate(list(raw["idx"])):
        value = f"{float(logits[i].reshape(-1)[0]):3.3f}" if task.is_regression else task.label_names[
            int(logits[i].argmax())]
        lines.append(f"{idx}\t{value}")
    layout.atomic_write_bytes(Path(folder) / name, ("\n".join(lines) + "\n").encode())


def trainer_metrics_fn(task):
    """compute_metrics for the Trainer's evaluation during training (--eval_strategy)."""

    def fn(prediction):
        logits = np.asarray(prediction.predictions)
        predictions = logits.reshape(-1) if task.is_regression else logits.argmax(-1)
        return compute_metrics(task, predictions, prediction.label_ids)

    return fn


# --------------------------------------------------------------------------------------------------- a run


def seed_folders(study_args, training_args) -> dict:
    """{seed: run folder}: --seeds puts each seed in <output_dir>/seed<N>; --seed writes into output_dir."""
    out = Path(training_args.output_dir)
    if study_args.seeds:
        return {s: out / f"seed{s}" for s in study_args.seeds}
    return {training_args.seed: out}


class Study:
    """Everything shared by the seeds of one model x task invocation."""

    def __init__(self, model_args, data_args, study_args, training_args):
        self.model_args, self.data_args, self.study_args, self.args = model_args, data_args, study_args, training_args
        self.task = get_task(data_args.task_name)
        arguments.check_against_task(training_args, self.task)
        # decided before any Trainer exists: resolving the default arguments resets accelerate's state
        self.fast_loop_fallback = arguments.fast_loop_fallback(training_args)
        self.folders = seed_folders(study_args, training_args)
        self.seeds = list(self.folders)
        self.protocol = arguments.protocol(model_args, data_args, study_args, training_args)
        complete = [str(f) for f in self.folders.values() if layout.is_complete(f)]
        if complete and not study_args.overwrite_output_dir:
            raise UserError(f"{', '.join(complete)} already hold(s) a complete run; pass --overwrite_output_dir "
                            f"to replace it, or choose another --output_dir")
        if (training_args.bf16 or training_args.fp16) and not torch.cuda.is_available():
            print(f"warning: --{'bf16' if training_args.bf16 else 'fp16'} without a GPU: autocast on the CPU is "
                  f"slower than float32 and changes the numbers; drop the flag on CPU", flush=True)
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.provenance = {"versions": layout.versions(), "git_commit": layout.git_commit()}  # once, not per seed
        self.load()

    def load(self):
        task, data_args, model_args = self.task, self.data_args, self.model_args
        want_test = self.args.do_predict
        splits, fingerprints = load_glue(task, data_args, want_test=want_test, cache_dir=model_args.cache_dir)
        cuts = {"train": data_args.max_train_samples, "test": data_args.max_predict_samples}
        self.raw, self.fingerprints, self.cut = {}, {}, {}
        for name, ds in splits.items():
            wanted = (name == "train" and self.args.do_train) or (name in task.validation_splits and self.args.do_eval) \
                or (name.startswith("test") and want_test)
            if wanted:
                limit = cuts.get(name.split("_")[0], data_args.max_eval_samples)
                self.raw[name], self.fingerprints[name] = select_rows(ds, limit, fingerprints[name])
                if len(self.raw[name]) < len(ds):  # a debug run is one whose cut removed rows
                    self.cut[name] = f"{len(self.raw[name])} of {len(ds)} rows"
        if self.args.do_train and "train" not in self.raw:
            raise UserError(f"--do_train needs a train split; {task.name}'s data has none (pass --train_file)")
        if self.args.do_eval and not any(s in self.raw for s in task.validation_splits):
            raise UserError("--do_eval needs a validation split; pass --validation_file or --glue_dir")
        if want_test and not any(s.startswith("test") for s in self.raw):
            raise UserError("--do_predict needs a test split; pass --test_file or --glue_dir with test.tsv")

        self.config = modeling.load_config(model_args, task)
        positions = modeling.max_positions(self.config)
        if positions and data_args.max_seq_length > positions:
            raise UserError(f"--max_seq_length {data_args.max_seq_length} exceeds the model's {positions} "
                            f"positions; use --max_seq_length {positions} or less")
        self.tokenizer = modeling.load_tokenizer(model_args, self.config)
        pad_before = self.tokenizer.pad_token
        modeling.ensure_pad_token(self.tokenizer, model_args.pad_token, model_args.append_eos)
        if model_args.append_eos and self.tokenizer.pad_token != pad_before and not model_args.pad_token:
            print(f"--append_eos: the pad token is now a distinct {self.tokenizer.pad_token} (it was "
                  f"{pad_before or 'unset'}), so that the head reads the appended EOS", flush=True)
        self.tokenizer_fp = modeling.tokenizer_fingerprint(self.tokenizer)
        self.tokenized = {k: model_inputs(v, labelled=not k.startswith("test")) for k, v in
                          tokenize(self.raw, task, self.tokenizer, data_args, model_args).items()}
        self.collator = DataCollatorWithPadding(
            self.tokenizer, padding="max_length" if data_args.pad_to_max_length else "longest",
            max_length=data_args.max_seq_length if data_args.pad_to_max_length else None)
        self.model, head_loaded = self.new_model()
        self.model_fp = modeling.model_fingerprint(self.model)
        self.saved_heads = self.resolve_heads(head_loaded)

    def new_model(self):
        model, head_loaded = modeling.load_model(self.model_args, self.config, self.tokenizer)
        modeling.freeze(model, self.model_args.freeze_base, self.model_args.unfreeze_top_layers,
                        self.model_args.base_dropout)
        return model, head_loaded

    def resolve_heads(self, head_loaded):
        """{seed: head tensors} to evaluate with when nothing trains; {} when heads start from the seed (training)
        or stay as the checkpoint loaded them."""
        name = self.model_args.model_name_or_path
        if self.args.do_train:
            if head_loaded:
                print(f"{name} holds a trained classification head; --do_train starts a new head from the seed "
                      f"(the checkpoint's head is not used)", flush=True)
            return {}
        if self.model_args.head_from:
            return {seed: self.read_head(seed) for seed in self.seeds}
        if head_loaded:
            print(f"evaluating the classification head saved in {name}", flush=True)
            return {}
        raise UserError(f"{name} has no trained classification head (a new one would be random); to evaluate a "
                        f"head trained with this tool pass --head_from <run folder>, or add --do_train")

    def read_head(self, seed):
        """The head of a run folder of ours, after checking it was trained on this very base and tokenizer."""
        root = Path(self.model_args.head_from)
        folder = root if (root / layout.HEAD_FILE).is_file() else root / f"seed{seed}"
        path = folder / layout.HEAD_FILE
        if not path.is_file():
            raise UserError(f"--head_from {root}: no {layout.HEAD_FILE} there (nor in seed{seed}/); give a run "
                            f"folder written by a --do_train run")
        try:
            config = json.loads((folder / layout.CONFIG_FILE).read_text())
        except (OSError, ValueError):
            raise UserError(f"--head_from {folder}: its {layout.CONFIG_FILE} is missing or unreadable, so the "
                            f"base it was trained on is unknown") from None
        for what, ours in (("model", self.model_fp), ("tokenizer", self.tokenizer_fp)):
            if config.get(f"{what}_fingerprint") != ours:
                raise UserError(f"--head_from {folder} was trained on another {what} ({what} fingerprint "
                                f"{str(config.get(f'{what}_fingerprint'))[:12]}…, this run's {ours[:12]}…); use "
                                f"the {what} that run used")
        if config.get("task") != self.task.name:
            raise UserError(f"--head_from {folder} is a {config.get('task')} run; this run is {self.task.name}")
        state = load_file(path)
        modeling.load_head(copy.deepcopy(modeling.head_modules(self.model)), state, f"--head_from {path}")
        return state

    def prepare_head(self, heads: dict, seed):
        """Set the head modules for a seed: the seed's init when training, the saved head when evaluating one."""
        if self.args.do_train:
            modeling.init_head(heads.values(), self.config, seed)
        elif self.saved_heads:
            modeling.load_head(heads, self.saved_heads[seed], f"--head_from {self.model_args.head_from}")

    def cache_reason(self):
        """Why the feature cache cannot serve this run, or None."""
        if not self.study_args.feature_cache:
            return "no --feature_cache"
        m = self.model_args
        if not m.freeze_base or m.unfreeze_top_layers or m.base_dropout:
            return "parts of the base train or run with dropout, so features change during training"
        changing = [f"--{k} ({why})" for k, why in arguments.CHANGES_FEATURES.items() if getattr(self.args, k, None)]
        if changing:
            return ", ".join(changing)
        modeling.pooling_rule(self.config)  # unsupported model types fail here, in one line
        return None

    def seed_args(self, seed, folder):
        """The Trainer's arguments for one seed. W&B is left to tracking.py (one W&B run per seed, both paths):
        the Trainer's own callback would put every seed of this process into one W&B run."""
        return dataclasses.replace(self.args, seed=seed, output_dir=str(folder),
                                   report_to=[r for r in self.args.report_to if r != "wandb"] or "none")

    def report(self, seed, folder, history, results):
        """--report_to wandb: this seed's W&B run, named <model alias>/<task>/seed<N>."""
        if "wandb" not in self.args.report_to:
            return
        folder = Path(folder).resolve()
        alias = folder.parent.parent.name if folder.parent.name == self.task.name else folder.parent.name
        group = self.args.run_name or f"{alias}/{self.task.name}"
        config = json.loads((folder / layout.CONFIG_FILE).read_text())
        tracking.log_to_wandb(f"{group}/seed{seed}", group, config, history, results)

    def write_config(self, seed, folder, path):
        args = {"model": dataclasses.asdict(self.model_args), "data": dataclasses.asdict(self.data_args),
                "study": dataclasses.asdict(self.study_args), "training": self.seed_args(seed, folder).to_dict()}
        for group in args.values():
            group.pop("token", None)  # never store credentials
            group.pop("hub_token", None)
        cuts = {k: getattr(self.data_args, k) for k in ("max_train_samples", "max_eval_samples",
                                                         "max_predict_samples") if getattr(self.data_args, k)}
        layout.atomic_write_json(Path(folder) / layout.CONFIG_FILE, {
            "format_version": layout.FORMAT_VERSION, "task": self.task.name, "seed": seed, "path": path,
            "protocol": self.protocol, "protocol_hash": layout.protocol_hash(self.protocol),
            "args": args, **self.provenance, "pooling": {
                "rule": modeling.POOLING.get(self.config.model_type),
                "position": modeling.pooled_position(modeling.POOLING.get(self.config.model_type),
                                                     self.model_args.append_eos),
                "pad_token": self.tokenizer.pad_token, "eos_token": self.tokenizer.eos_token},
            "data_fingerprints": self.fingerprints,
            "model_fingerprint": self.model_fp, "tokenizer_fingerprint": self.tokenizer_fp,
            "global_batch_size": self.args.per_device_train_batch_size * self.args.world_size
            * self.args.gradient_accumulation_steps,
            "max_samples": cuts or None, "cut_splits": self.cut or None, "debug_run": bool(self.cut),
            "start_time": self.started,
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        })

    # ------------------------------------------------------------------------------------------------------

    def run(self):
        reason = self.cache_reason()
        cached = reason is None
        if self.study_args.feature_cache and not cached:
            print(f"feature cache not used: {reason}; running the Trainer path", flush=True)
        for seed, folder in self.folders.items():  # config.json first, before extraction or training
            if int(os.environ.get("RANK", "0")) == 0:  # one writer under a multi-process launcher
                Path(folder).mkdir(parents=True, exist_ok=True)
                layout.clear_outputs(folder)  # no file of an earlier run stays beside the new config.json
                self.write_config(seed, folder, "cached" if cached else "trainer")
        if cached:
            self.run_cached(self.extract_all())
        else:
            for seed, folder in self.folders.items():
                self.run_trainer(seed, folder)
                print(f"run complete: {folder}", flush=True)

    def eval_dataset(self, data):
        """What the Trainer evaluates during training (--eval_strategy): the validation split(s)."""
        if self.args.eval_strategy == "no":
            return None
        splits = [s for s in self.task.validation_splits if s in self.raw]
        if not splits:
            raise UserError("--eval_strategy needs a validation split; add --do_eval")
        return data(splits[0]) if len(splits) == 1 else {s: data(s) for s in splits}

    def run_trainer(self, seed, folder):
        args = self.seed_args(seed, folder)
        reuse = self.model_args.freeze_base and not self.model_args.unfreeze_top_layers and not args.deepspeed
        model = self.model if reuse or seed == self.seeds[0] else self.new_model()[0]
        self.prepare_head(modeling.head_modules(model), seed)
        trainer = Trainer(model=model, args=args, train_dataset=self.tokenized.get("train"),
                          eval_dataset=self.eval_dataset(self.tokenized.__getitem__),
                          compute_metrics=trainer_metrics_fn(self.task) if args.eval_strategy != "no" else None,
                          processing_class=self.tokenizer, data_collator=self.collator)
        metrics = trainer.train().metrics if self.args.do_train else None
        self.finish(seed, trainer, folder, metrics, self.tokenized.__getitem__, lambda: modeling.head_state_dict(model),
                    lambda path: trainer.save_model(path))

    def precision(self):
        return torch.bfloat16 if self.args.bf16 else torch.float16 if self.args.fp16 else None

    def cache_parts(self, split):
        """Everything that changes a split's features: the feature-cache key is the hash of this."""
        return {"model_fp": self.model_fp, "tokenizer": self.tokenizer_fp,
                "max_seq_length": self.data_args.max_seq_length, "pad_to_max_length": self.data_args.pad_to_max_length,
                "append_eos": self.model_args.append_eos, "pooling": modeling.pooling_rule(self.config),
                "pad_token_id": self.config.pad_token_id, "precision": str(self.precision()),
                "dtype": self.study_args.feature_dtype, "data": rows_digest(self.raw[split], self.task.text_keys)}

    def extract_all(self):
        if self.args.deepspeed:
            print("cached path: --deepspeed is not used (the base runs forward once and the head trains in one "
                  "process)", flush=True)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise UserError("the feature cache runs in one process; launch with one GPU (NUM_GPUS=1) or plain python")
        device = torch.device("cuda" if torch.cuda.is_available() and not self.args.use_cpu else "cpu")
        self.model.to(device)
        before = feature_cache.stats["base_forward_batches"]
        features = {}
        for split, ds in self.tokenized.items():
            features[split] = feature_cache.cached_features(
                self.study_args.feature_cache, self.model, self.model_fp, self.task.name, split, ds, self.collator,
                self.cache_parts(split), rule=modeling.pooling_rule(self.config),
                batch_size=self.study_args.extraction_batch_size, device=device, autocast_dtype=self.precision(),
                store_dtype=getattr(torch, self.study_args.feature_dtype), rebuild=self.data_args.overwrite_cache)
        done = feature_cache.stats["base_forward_batches"] - before
        print(f"feature cache: {done} base forward batches this run" + (" (all splits from cache)" if not done else ""),
              flush=True)
        self.model.to("cpu")
        return features

    def run_cached(self, features):
        """Every seed's head from the cached features (head_training.train_heads), then each seed evaluated and
        written like a Trainer-path run."""
        data = {s: modeling.FeatureDataset(features[s], None if s.startswith("test") else list(self.raw[s]["label"]),
                                           self.task.is_regression) for s in features}
        trainers = {}
        for seed, folder in self.folders.items():
            # FeatureDataset yields exactly CachedHead's arguments: no column filtering needed
            args = dataclasses.replace(self.seed_args(seed, folder), deepspeed=None, remove_unused_columns=False)
            modules = copy.deepcopy(modeling.head_modules(self.model))
            self.prepare_head(modules, seed)
            head = modeling.CachedHead(modules, modeling.pooling_rule(self.config), source_model=self.model)
            trainers[seed] = Trainer(model=head, args=args, train_dataset=data.get("train"),
                                     eval_dataset=self.eval_dataset(data.__getitem__),
                                     compute_metrics=trainer_metrics_fn(self.task) if args.eval_strategy != "no"
                                     else None)
        metrics = {}
        if self.args.do_train:
            trained = head_training.train_heads(list(trainers.values()), self.fast_loop_fallback)
            metrics = dict(zip(trainers, trained))
        for seed, trainer in trainers.items():
            self.finish(seed, trainer, self.folders[seed], metrics.get(seed), data.__getitem__,
                        trainer.model.model_state_dict, lambda path, t=trainer: self.save_full_model(t.model, path))
            print(f"run complete: {self.folders[seed]}", flush=True)

    def save_full_model(self, head, path):
        """--save_full_model on the cached path: the frozen base with this seed's trained head, as one model."""
        model = copy.deepcopy(self.model)
        modeling.load_head(modeling.head_modules(model), head.model_state_dict(), "the trained head")
        model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)

    def finish(self, seed, trainer, folder, train_metrics, eval_data, head_state, save_model):
        """After training (train_metrics: None without --do_train): the head, evaluation, prediction dumps, then
        all_results.json last (atomically). The files and keys are upstream run_glue.py's."""
        folder = Path(folder)
        results = {}
        main = trainer.is_world_process_zero()
        if train_metrics is not None:
            # Trainer's progress callbacks pop total_flos from the metrics they print; upstream's file has it
            train_metrics = {"total_flos": trainer.state.total_flos, **train_metrics,
                             "train_samples": len(self.raw["train"])}
            results.update(train_metrics)
            if main:
                layout.atomic_write_json(folder / layout.TRAIN_RESULTS_FILE, train_metrics)
                layout.atomic_write_bytes(folder / layout.STATE_FILE, (json.dumps(
                    dataclasses.asdict(trainer.state), indent=2, sort_keys=True) + "\n").encode())
        state = head_state()  # every rank: gathering a ZeRO-3 head is collective
        if main:
            layout.atomic_write_bytes(folder / layout.HEAD_FILE, save(state))
            if self.model_args.save_full_model:
                save_model(str(folder / layout.MODEL_DIR))
        epoch = {"epoch": trainer.state.epoch} if train_metrics is not None and trainer.state.epoch else {}
        collapsed = []
        for split in self.task.validation_splits if self.args.do_eval else ():
            if split not in self.raw:
                continue
            output = trainer.predict(eval_data(split), metric_key_prefix="eval")
            metrics, rows = eval_outputs(self.task, split, self.raw[split], output)
            results.update(metrics)
            reason = diagnostics.collapse_reason(self.task, output.predictions, self.raw[split]["label"],
                                                 self.raw["train"]["label"] if "train" in self.raw else None)
            if reason:
                collapsed.append(reason + (f" ({split})" if len(self.task.validation_splits) > 1 else ""))
            for k in ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second"):
                if k in output.metrics:
                    results[k + self.task.metric_suffix(split)] = output.metrics[k]
            if main:
                layout.atomic_write_jsonl(folder / self.task.prediction_file(split), rows)
                print(" ".join(f"{k}={v:.4f}" for k, v in metrics.items() if "samples" not in k), flush=True)
        for split in [s for s in self.raw if s.startswith("test")]:
            output = trainer.predict(eval_data(split), metric_key_prefix="predict")
            if main:
                write_predict_results(folder, self.task, split, self.raw[split], output.predictions)
        if self.args.do_eval:  # a dead head must not be read as a model difference (analysis marks it)
            results.update(head_collapsed=bool(collapsed), head_collapse_reason="; ".join(collapsed) or None)
            if collapsed:
                print(f"warning: the head learnt nothing: {'; '.join(collapsed)}", flush=True)
        if main:
            eval_only = {k: v for k, v in results.items() if k.startswith("eval_")}
            if eval_only:
                layout.atomic_write_json(folder / layout.EVAL_RESULTS_FILE, {**eval_only, **epoch})
            results.update(epoch)
            layout.atomic_write_json(folder / layout.RESULTS_FILE, results)  # LAST: marks the run complete
            self.report(seed, folder, trainer.state.log_history if train_metrics is not None else [], results)


def quiet_loading():
    """No progress bars for loading and tokenizing (a second on any model; they would bury a user error's one
    line on stderr). Training's progress bar stays (--disable_tqdm). The head's load status is printed by
    resolve_heads, so transformers' load report is not needed either."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("transformers.modeling_utils").setLevel(logging.ERROR)


def start_cpu_deepspeed(argv):
    """DeepSpeed on CPU over several processes (gloo): with --use_cpu the Trainer builds a plain CPU state and never
    starts DeepSpeed's communication, so DeepSpeed would count one process where the Trainer counts all of them
    (and refuse the batch sizes). Start DeepSpeed's process group first; on GPUs the Trainer does it itself."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and arguments.flag_set(argv, "deepspeed") and \
            arguments.flag_set(argv, "use_cpu"):
        import deepspeed

        deepspeed.init_distributed(dist_backend="gloo")


def run_command(argv) -> int:
    """run_glue_frozen.py ARGV: parse, take the run folders' locks, run every seed."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO,
                        stream=sys.stdout)  # progress on stdout; stderr is for what went wrong
    quiet_loading()
    start_cpu_deepspeed(argv)
    model_args, data_args, study_args, training_args = arguments.parse_args(argv)
    set_seed(training_args.seed)
    with contextlib.ExitStack() as locks:
        if int(os.environ.get("RANK", "0")) == 0:  # one owner per folder, also under a multi-process launcher
            for folder in seed_folders(study_args, training_args).values():
                locks.enter_context(layout.RunLock(folder))
        Study(model_args, data_args, study_args, training_args).run()
    return 0


def main(argv=None) -> int:
    """The command line of run_glue_frozen.py; returns the exit code (2: a user error, in one line)."""
    return run_cli(run_command, sys.argv[1:] if argv is None else list(argv))

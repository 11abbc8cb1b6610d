#!/usr/bin/env python
"""Frozen-base GLUE: train only the classification head of a (possibly specialized) language model.

Takes upstream transformers `run_glue.py`'s flags and adds base freezing, COMET-style checkpoint + tokenizer
loading, per-example prediction dumps, several seeds per invocation, and a feature cache (the frozen base runs
forward once; every seed's head trains from the stored features). Writes the run folders of docs/DESIGN.md.

    python run_glue_frozen.py --model_name_or_path gpt2-xl --task_name cola --do_train --do_eval \
        --output_dir runs/gpt2-xl/cola/seed1 --seed 1
    python run_glue_frozen.py ... --seeds 1 2 3 4 5 --feature_cache .cache/features --output_dir runs/gpt2-xl/cola
"""

import copy
import dataclasses
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from frozen_glue.hub import ensure_offline_mode_if_unreachable

ensure_offline_mode_if_unreachable()  # before transformers/datasets read HF_HUB_OFFLINE at import

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import (DataCollatorWithPadding, HfArgumentParser, Trainer,  # noqa: E402
                          TrainingArguments, set_seed)

from frozen_glue import cache as feature_cache  # noqa: E402
from frozen_glue import head_training, layout, modeling  # noqa: E402
from frozen_glue.data import load_glue, rows_digest, select_rows  # noqa: E402
from frozen_glue.errors import UserError  # noqa: E402
from frozen_glue.tasks import compute_metrics, get_task  # noqa: E402

logger = logging.getLogger("frozen_glue")


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
        "help": "Also save the whole model under <output_dir>/model (GBs for GPT-2 XL). Default: head only."})


@dataclass
class DataTrainingArguments:
    task_name: str | None = field(default=None, metadata={
        "help": "GLUE task: cola sst2 mrpc stsb qqp mnli qnli rte wnli."})
    glue_dir: str | None = field(default=None, metadata={
        "help": "Folder of the original GLUE release (CoLA/train.tsv, MNLI/dev_matched.tsv, ...)."})
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset (default nyu-mll/glue)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Unused: the task names the config."})
    max_seq_length: int = field(default=128, metadata={
        "help": "Longest input after tokenization; longer ones are truncated."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Re-extract cached features."})
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
    extraction_batch_size: int = field(default=64, metadata={"help": "Batch size of the feature extraction."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Replace a complete run in output_dir (refused otherwise)."})


@dataclass
class FrozenTrainingArguments(TrainingArguments):
    # a frozen base needs no checkpoints: the head is saved at the end (a few KB), never a 6 GB model
    save_strategy: str = field(default="no", metadata={
        "help": "Checkpoint strategy (default no: only head.safetensors is written at the end)."})
    report_to: None | str | list[str] = field(default="none", metadata={
        "help": "Integrations to report to, e.g. wandb (WANDB_MODE=offline works). Default: none."})
    output_dir: str | None = field(default=None, metadata={"help": "The run folder (or the seeds' parent)."})


def parse_args(argv):
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, StudyArguments, FrozenTrainingArguments))
    if len(argv) == 1 and argv[0].endswith(".json"):
        if not Path(argv[0]).is_file():
            raise UserError(f"args file {argv[0]} does not exist")
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


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


class FeatureDataset(torch.utils.data.Dataset):
    """Cached features (+ labels, absent for test splits) in the shape the Trainer feeds to CachedHead."""

    def __init__(self, features, labels, regression):
        self.features = features.float()
        self.labels = None if labels is None else torch.tensor(labels, dtype=torch.float32 if regression else torch.long)

    def __len__(self):
        return len(self.features)

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, indices):  # one indexing op per batch instead of one per row
        index = torch.as_tensor(indices)
        if self.labels is None:
            return [{"features": f} for f in self.features[index]]
        return [{"features": f, "labels": y} for f, y in zip(self.features[index], self.labels[index])]


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


# --------------------------------------------------------------------------------------------------- a run


class Study:
    """Everything shared by the seeds of one model x task invocation."""

    def __init__(self, model_args, data_args, study_args, training_args):
        self.model_args, self.data_args, self.study_args, self.args = model_args, data_args, study_args, training_args
        if not data_args.task_name:
            raise UserError("--task_name is required: one of cola sst2 mrpc stsb qqp mnli qnli rte wnli")
        self.task = get_task(data_args.task_name)
        if not training_args.output_dir:
            raise UserError("--output_dir is required (e.g. runs/<model>/<task>/seed<N>)")
        if study_args.feature_dtype not in ("float32", "float16"):
            raise UserError(f"--feature_dtype {study_args.feature_dtype}: use float32 or float16")
        self.seeds = study_args.seeds or [training_args.seed]
        out = Path(training_args.output_dir)
        self.folders = {s: out / f"seed{s}" for s in self.seeds} if study_args.seeds else {self.seeds[0]: out}
        complete = [str(f) for f in self.folders.values() if layout.is_complete(f)]
        if complete and not study_args.overwrite_output_dir:
            raise UserError(f"{', '.join(complete)} already hold(s) a complete run; pass --overwrite_output_dir "
                            f"to replace it, or choose another --output_dir")
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.provenance = {"versions": layout.versions(), "git_commit": layout.git_commit()}  # once, not per seed
        self.load()

    def load(self):
        task, data_args, model_args = self.task, self.data_args, self.model_args
        want_test = self.args.do_predict
        splits, fingerprints = load_glue(task, data_args, want_test=want_test)
        cuts = {"train": data_args.max_train_samples, "test": data_args.max_predict_samples}
        self.raw, self.fingerprints = {}, {}
        for name, ds in splits.items():
            wanted = (name == "train" and self.args.do_train) or (name in task.validation_splits and self.args.do_eval) \
                or (name.startswith("test") and want_test)
            if wanted:
                limit = cuts.get(name.split("_")[0], data_args.max_eval_samples)
                self.raw[name], self.fingerprints[name] = select_rows(ds, limit, fingerprints[name])
        for name in ("train",) if self.args.do_train else ():
            if name not in self.raw:
                raise UserError(f"--do_train needs a train split; {task.name}'s data has none (pass --train_file)")
        if self.args.do_eval and not any(s in self.raw for s in task.validation_splits):
            raise UserError(f"--do_eval needs a validation split; pass --validation_file or --glue_dir")

        self.config = modeling.load_config(model_args, task)
        positions = modeling.max_positions(self.config)
        if positions and data_args.max_seq_length > positions:
            raise UserError(f"--max_seq_length {data_args.max_seq_length} exceeds the model's {positions} "
                            f"positions; use --max_seq_length {positions} or less")
        self.tokenizer = modeling.load_tokenizer(model_args, self.config)
        modeling.ensure_pad_token(self.tokenizer, model_args.pad_token)
        self.tokenizer_fp = modeling.tokenizer_fingerprint(self.tokenizer)
        self.tokenized = {k: model_inputs(v, labelled=not k.startswith("test")) for k, v in
                          tokenize(self.raw, task, self.tokenizer, data_args, model_args).items()}
        self.collator = DataCollatorWithPadding(
            self.tokenizer, padding="max_length" if data_args.pad_to_max_length else "longest",
            max_length=data_args.max_seq_length if data_args.pad_to_max_length else None)
        self.model = self.new_model()
        self.model_fp = modeling.model_fingerprint(self.model)

    def new_model(self):
        model = modeling.load_model(self.model_args, self.config, self.tokenizer)
        modeling.freeze(model, self.model_args.freeze_base, self.model_args.unfreeze_top_layers,
                        self.model_args.base_dropout)
        return model

    @property
    def use_cache(self):
        if not self.study_args.feature_cache:
            return False
        reason = (None if self.model_args.freeze_base and not self.model_args.unfreeze_top_layers
                  and not self.model_args.base_dropout else
                  "parts of the base train or run with dropout")
        if reason:
            print(f"feature cache not used: {reason}, so features change during training; running the Trainer "
                  f"path", flush=True)
            return False
        modeling.pooling_rule(self.config)  # unsupported model types fail here, in one line
        return True

    def seed_args(self, seed, folder):
        return dataclasses.replace(self.args, seed=seed, output_dir=str(folder))

    def write_config(self, seed, folder, path):
        args = {"model": dataclasses.asdict(self.model_args), "data": dataclasses.asdict(self.data_args),
                "study": dataclasses.asdict(self.study_args), "training": self.seed_args(seed, folder).to_dict()}
        for group in args.values():
            group.pop("token", None)  # never store credentials
        cuts = {k: getattr(self.data_args, k) for k in ("max_train_samples", "max_eval_samples",
                                                         "max_predict_samples") if getattr(self.data_args, k)}
        layout.atomic_write_json(Path(folder) / layout.CONFIG_FILE, {
            "task": self.task.name, "seed": seed, "path": path, "args": args, **self.provenance,
            "data_fingerprints": self.fingerprints,
            "model_fingerprint": self.model_fp, "tokenizer_fingerprint": self.tokenizer_fp,
            "max_samples": cuts or None, "debug_run": bool(cuts), "start_time": self.started,
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        })

    # ------------------------------------------------------------------------------------------------------

    def run(self):
        cached = self.use_cache
        for seed, folder in self.folders.items():  # config.json first, before extraction or training
            Path(folder).mkdir(parents=True, exist_ok=True)
            Path(folder, layout.RESULTS_FILE).unlink(missing_ok=True)  # an overwritten run is incomplete
            self.write_config(seed, folder, "cached" if cached else "trainer")
        if cached:
            self.run_cached(self.extract_all())
        else:
            for seed, folder in self.folders.items():
                self.run_trainer(seed, folder)
                print(f"run complete: {folder}", flush=True)

    def run_trainer(self, seed, folder):
        args = self.seed_args(seed, folder)
        reuse = self.model_args.freeze_base and not self.model_args.unfreeze_top_layers and not args.deepspeed
        model = self.model if reuse or seed == self.seeds[0] else self.new_model()
        modeling.init_head(modeling.head_modules(model).values(), model.config, seed)
        trainer = Trainer(model=model, args=args, train_dataset=self.tokenized.get("train"),
                          processing_class=self.tokenizer, data_collator=self.collator)
        metrics = trainer.train().metrics if self.args.do_train else None
        self.finish(trainer, folder, metrics, lambda split: self.tokenized[split],
                    lambda: modeling.head_state_dict(model), model)

    def precision(self):
        return torch.bfloat16 if self.args.bf16 else torch.float16 if self.args.fp16 else None

    def cache_parts(self, split):
        """Everything that changes a split's features: the feature-cache key is the hash of this."""
        parts = {"model_fp": self.model_fp, "tokenizer": self.tokenizer_fp,
                 "max_seq_length": self.data_args.max_seq_length, "pad_to_max_length": self.data_args.pad_to_max_length,
                 "append_eos": self.model_args.append_eos, "pooling": modeling.pooling_rule(self.config),
                 "pad_token_id": self.config.pad_token_id, "precision": str(self.precision()),
                 "dtype": self.study_args.feature_dtype, "data": rows_digest(self.raw[split], self.task.text_keys)}
        if self.data_args.overwrite_cache:
            parts["rebuild"] = time.time_ns()  # a key nobody has: forces extraction
        return parts

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
                store_dtype=getattr(torch, self.study_args.feature_dtype))
        done = feature_cache.stats["base_forward_batches"] - before
        print(f"feature cache: {done} base forward batches this run" + (" (all splits from cache)" if not done else ""),
              flush=True)
        self.model.to("cpu")
        return features

    def run_cached(self, features):
        """Every seed's head from the cached features: trained together (head_training.train_many), then each
        seed evaluated and written like a Trainer-path run."""
        data = {s: FeatureDataset(features[s], None if s.startswith("test") else list(self.raw[s]["label"]),
                                  self.task.is_regression) for s in features}
        trainers = {}
        for seed, folder in self.folders.items():
            # FeatureDataset yields exactly CachedHead's arguments: no column filtering needed
            args = dataclasses.replace(self.seed_args(seed, folder), deepspeed=None, remove_unused_columns=False)
            modules = copy.deepcopy(modeling.head_modules(self.model))
            modeling.init_head(modules.values(), self.config, seed)
            head = modeling.CachedHead(modules, modeling.pooling_rule(self.config), self.task.num_labels,
                                       self.config.problem_type, source_model=self.model)
            trainers[seed] = Trainer(model=head, args=args, train_dataset=data.get("train"))
        metrics = dict(zip(trainers, head_training.train_many(list(trainers.values())))) if self.args.do_train else {}
        for seed, trainer in trainers.items():
            self.finish(trainer, self.folders[seed], metrics.get(seed), data.__getitem__,
                        trainer.model.model_state_dict, None)
            print(f"run complete: {self.folders[seed]}", flush=True)

    def finish(self, trainer, folder, train_metrics, eval_data, head_state, model):
        """After training (train_metrics: None without --do_train): the head, evaluation, prediction dumps, then
        all_results.json last (atomically)."""
        results = {}
        if train_metrics is not None:
            results.update(train_metrics)
            results["train_samples"] = len(self.raw["train"])
            layout.atomic_write_json(Path(folder) / "train_results.json", train_metrics)
        if trainer.is_world_process_zero():
            save_file(head_state(), str(Path(folder) / layout.HEAD_FILE))
            if self.model_args.save_full_model and model is not None:
                trainer.save_model(str(Path(folder) / "model"))
        for split in self.task.validation_splits if self.args.do_eval else ():
            if split not in self.raw:
                continue
            output = trainer.predict(eval_data(split), metric_key_prefix="eval")
            metrics, rows = eval_outputs(self.task, split, self.raw[split], output)
            results.update(metrics)
            for k in ("eval_runtime", "eval_samples_per_second"):
                if k in output.metrics:
                    results[k + self.task.metric_suffix(split)] = output.metrics[k]
            if trainer.is_world_process_zero():
                layout.atomic_write_jsonl(Path(folder) / self.task.prediction_file(split), rows)
                print(" ".join(f"{k}={v:.4f}" for k, v in metrics.items() if "samples" not in k), flush=True)
        for split in [s for s in self.raw if s.startswith("test")]:
            output = trainer.predict(eval_data(split), metric_key_prefix="predict")
            if trainer.is_world_process_zero():
                write_predict_results(folder, self.task, split, self.raw[split], output.predictions)
        if trainer.is_world_process_zero():
            eval_only = {k: v for k, v in results.items() if k.startswith("eval_")}
            layout.atomic_write_json(Path(folder) / "eval_results.json", eval_only)
            layout.atomic_write_json(Path(folder) / layout.RESULTS_FILE, results)  # LAST: marks the run complete


def main(argv=None):
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        model_args, data_args, study_args, training_args = parse_args(sys.argv[1:] if argv is None else argv)
        set_seed(training_args.seed)
        Study(model_args, data_args, study_args, training_args).run()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())

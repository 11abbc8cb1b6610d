"""Zero-shot scoring beside the probe (--zero_shot): the same validation rows, scored with lm-eval's GLUE prompt on
the model's own causal-LM head, through lm-eval's Python API, into runs/<alias>/<task>/zeroshot/ under the run
folder contract (config.json first, predictions_<split>.jsonl with the probe's idx, all_results.json last).

Must not touch the probe: it loads its own model and tokenizer (lm-eval changes a tokenizer in place) and leaves
the global RNGs as it found them, so a probe's results are the same with and without --zero_shot."""

import argparse
import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from frozen_glue.config import adapters, contract
from frozen_glue.core import compat, layout, provenance
from frozen_glue.core.errors import UserError
from frozen_glue.core.identity import source_stamp
from frozen_glue.core.tasks import compute_metrics, get_task
from frozen_glue.features.data import load_splits, rows_digest
from frozen_glue.measures import diagnostics
from frozen_glue.model import fingerprinting, loading
from frozen_glue.science.zeroshot_prompts import installed_yaml, lm_eval_version, prompt_hash, task_name, task_yaml_hash

logger = logging.getLogger(__name__)

NUM_FEWSHOT = 0
CALIBRATION = "mean_loglik"  # argmax over choices of (log-likelihood - that choice's mean over the split)


def samples_file(split):
    """lm-eval's own per-example records (log_samples) of a split."""
    return f"samples_{split}.jsonl"


def rows_file(split):  # the rows lm-eval reads (dataset_path: json), beside the task yaml
    return f"rows_{split}.jsonl"


def yaml_file(split):
    return f"task_{split}.yaml"


OUTPUTS = ("samples_*.jsonl", "rows_*.jsonl", "task_*.yaml")  # ours, beside layout.OUTPUT_PATTERNS


def folder_for(output_dir, seeds) -> Path:
    """Where a run's zero-shot scores go: <output_dir>/zeroshot when output_dir is the model x task folder (--seeds,
    or a zero-shot-only run), <output_dir>/../zeroshot when output_dir is one seed's folder (seed<N>)."""
    out = Path(output_dir)
    return out.parent / layout.ZEROSHOT_DIR if not seeds and re.fullmatch(r"seed\d+", out.name) else out / layout.ZEROSHOT_DIR


def protocol(model_args, data_args, study_args=None) -> dict:
    """Everything that can change a zero-shot run's numbers (what the sweep compares before skipping one); with
    --zero_shot_chat_template also `chat_template` (absent without it: runs recorded before the flag still match)."""
    task = get_task(data_args.task_name)
    chat = {"chat_template": True} if getattr(study_args, "zero_shot_chat_template", False) else {}
    return {**chat, "zero_shot": True, "lm_eval": lm_eval_version(), "task_yaml_hash": task_yaml_hash(task),
            "prompt_hash": {s: prompt_hash(task, s) for s in task.validation_splits}, "num_fewshot": NUM_FEWSHOT,
            "calibration": CALIBRATION, "random_init": model_args.random_init,
            "max_eval_samples": data_args.max_eval_samples, "max_train_samples": data_args.max_train_samples}


def _causal(architectures) -> bool:
    return any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures or [])


def has_causal_head(path) -> bool:
    """Whether a local model dir's config.json names a causal-LM class (False when unknown: a hub id)."""
    try:
        return _causal(json.loads((Path(path) / "config.json").read_text()).get("architectures"))
    except (OSError, ValueError, AttributeError):
        return False


def check_model(model_args):
    """Refuse, in one line and before anything runs, a model without a causal-LM head (BERT, RoBERTa: encoders)."""
    from transformers import AutoConfig

    name = model_args.config_name or adapters.resolve(model_args)[0].model_name_or_path  # an adapter: its base's
    loading.check_model_location(name)
    config = loading._from_pretrained(AutoConfig.from_pretrained, name, "the model config",
                                      **loading._hub_kwargs(model_args))
    if not _causal(config.architectures):
        raise UserError(f"--zero_shot scores the model's own causal-LM head, and {model_args.model_name_or_path} is "
                        f"{', '.join(config.architectures or []) or 'a ' + config.model_type + ' without one'} (no "
                        f"causal-LM head); drop --zero_shot for this model")
    return config


def check_ready(model_args, study_args, training_args):
    """Before anything runs: the model has a causal-LM head, and a complete zero-shot run is replaced only on
    request (an incomplete one, a killed run, is simply redone)."""
    check_model(model_args)
    folder = folder_for(training_args.output_dir, study_args.seeds)
    if layout.is_complete(folder) and not study_args.overwrite_output_dir:
        raise UserError(f"{folder} already holds a complete zero-shot run; pass --overwrite_output_dir to replace "
                        f"it, or choose another --output_dir")


def load_lm(model_args):
    """(causal LM in eval mode, its tokenizer as loaded): the checkpoint's own LM head; --random_init draws the same
    architecture from loading's fixed seed, as the probe's control does."""
    from transformers import AutoModelForCausalLM

    config = check_model(model_args)
    tokenizer = loading.load_tokenizer(model_args, config)
    if model_args.random_init:
        with torch.random.fork_rng():
            torch.manual_seed(loading.RANDOM_INIT_SEED)
            model = AutoModelForCausalLM.from_config(config)
    else:
        base, adapter = adapters.resolve(model_args)
        model = loading._from_pretrained(AutoModelForCausalLM.from_pretrained, base.model_name_or_path,
                                         "the model", **loading._hub_kwargs(model_args))
        model = loading.attach_adapter(model, adapter) if adapter else model
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:  # a tokenizer with ids the checkpoint lacks: new rows at zero, as the probe's load
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            model.get_input_embeddings().weight[rows:] = 0
    return model.eval(), tokenizer


@contextlib.contextmanager
def isolated_rng():
    """The global RNGs (python, numpy, torch) as they were before: the probe's draws do not depend on a zero-shot
    run beside them."""
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


def write_task(folder, task, split, raw) -> str:
    """The rows (idx, text fields, label) and a task yaml that includes lm-eval's installed GLUE task and reads
    them: `lm_eval --include_path <folder> --tasks <name>` reproduces the run. Returns the task's name."""
    import yaml

    folder = Path(folder).resolve()
    data = raw.to_dict()
    keep = ["idx", *task.text_keys, "label"]
    layout.atomic_write_jsonl(folder / rows_file(split), [dict(zip(keep, values)) for values in
                                                          zip(*(data[k] for k in keep))])
    name = task_name(task, split)
    config = {"include": str(installed_yaml(task, split)), "task": name, "tag": None, "dataset_path": "json",
              "dataset_name": None, "dataset_kwargs": {"data_files": {split: str(folder / rows_file(split))}},
              "training_split": None, "validation_split": split, "test_split": None}
    layout.atomic_write_bytes(folder / yaml_file(split), yaml.safe_dump(config, sort_keys=False).encode())
    return name


def score(model, tokenizer, folder, names, batch_size, chat_template=False) -> dict:
    """lm-eval's simple_evaluate of our task yamls on a loaded model: {name: (metrics, samples by doc_id)}. lm-eval
    gets a copy of the tokenizer (it sets a pad token in place) and no seeds (it would reseed the global RNGs)."""
    from lm_eval import evaluator
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    for name in ("lm_eval", "lm-eval"):  # its per-task notes are about its own defaults, not the user's input
        logging.getLogger(name).setLevel(logging.ERROR)
    lm = HFLM(pretrained=model, tokenizer=copy.deepcopy(tokenizer), batch_size=batch_size)
    with isolated_rng(), compat.quiet_lm_eval_git(provenance.git_commit()):
        out = evaluator.simple_evaluate(
            model=lm, tasks=list(names), num_fewshot=NUM_FEWSHOT, log_samples=True, bootstrap_iters=0,
            task_manager=TaskManager(include_defaults=False, include_path=str(folder)), random_seed=None,
            numpy_random_seed=None, torch_random_seed=None, fewshot_random_seed=None, apply_chat_template=chat_template)
    return {name: ({k.split(",")[0]: v for k, v in out["results"][name].items() if k.endswith(",none")
                    and "stderr" not in k}, sorted(out["samples"][name], key=lambda s: s["doc_id"]))
            for name in names}


def loglikelihoods(samples, raw) -> np.ndarray:
    """[rows x choices] log-likelihoods of each choice after the prompt, in split order (checked by idx)."""
    idx = list(raw["idx"])
    if [s["doc"]["idx"] for s in samples] != idx:
        raise RuntimeError("lm-eval's samples are not the rows written, in order")  # a bug, not a user error
    return np.array([[float(resp[0][0]) for resp in s["resps"]] for s in samples])


def calibrated(ll) -> np.ndarray:
    """The label-free calibrated prediction: argmax over choices of (log-likelihood - that choice's mean
    log-likelihood over the split), so a choice the prompt favours for every row loses its head start."""
    return (ll - ll.mean(axis=0, keepdims=True)).argmax(-1)


def evaluate_split(task, split, raw, ll, train_labels):
    """(all_results keys, prediction rows) of one split from its log-likelihoods."""
    labels, suffix = np.asarray(raw["label"]), task.metric_suffix(split)
    pred, cal = ll.argmax(-1), calibrated(ll)
    metrics = {f"eval_{k}{suffix}": v for k, v in compute_metrics(task, pred, labels).items()}
    metrics.update({f"eval_calibrated_{k}{suffix}": v for k, v in compute_metrics(task, cal, labels).items()})
    if train_labels is not None:  # the probe's control: always the train split's majority class
        metrics.update(diagnostics.majority_baseline(task, train_labels, labels, suffix))
    metrics[f"eval_samples{suffix}"] = len(labels)
    data = raw.to_dict()
    rows = [{"idx": int(data["idx"][i]), "label": int(labels[i]), "prediction": int(pred[i]),
             "logliks": [round(float(v), 6) for v in ll[i]], "calibrated_prediction": int(cal[i]),
             **{k: data[k][i] for k in task.text_keys}} for i in range(len(labels))]
    return metrics, rows, diagnostics.collapse_reason(task, ll, labels)


def load_rows(task, data_args, cache_dir):
    """({validation split: rows after max_eval_samples}, {split: fingerprint}, train labels for the majority
    control (after max_train_samples, as the probe's)): the probe's own loader (data.load_splits) for a run that
    only evaluates, so both score the same rows."""
    splits = argparse.Namespace(do_train=False, do_eval=True, do_predict=False)
    raw, fps, _, train_labels = load_splits(task, data_args, splits, cache_dir, eval_flag="--zero_shot")
    return raw, fps, train_labels


def start(folder, model_args, data_args, proto, raw, fps, model_fp, tokenizer_fp, started, chat_template=None):
    """A fresh zero-shot folder holding only its config.json (no output of an earlier run beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    layout.clear_outputs(folder)
    for path in [path for pattern in OUTPUTS for path in folder.glob(pattern)]:
        path.unlink()
    task = get_task(data_args.task_name)
    cuts = {k: getattr(data_args, k) for k in ("max_train_samples", "max_eval_samples") if getattr(data_args, k)}
    args = {"model": {k: v for k, v in dataclasses.asdict(model_args).items() if k != "token"},
            "data": dataclasses.asdict(data_args)}
    layout.atomic_write_json(folder / layout.CONFIG_FILE, {
        "format_version": layout.RUN_FORMAT_VERSION, "task": task.name, "path": "zeroshot", "protocol": proto,
        "protocol_hash": contract.protocol_hash(proto), "args": args, "versions": {**provenance.versions(),
                                                                                 "lm_eval": lm_eval_version()},
        "git_commit": provenance.git_commit(), "lm_eval_version": lm_eval_version(),
        "task_yaml_hash": proto["task_yaml_hash"], "prompt_hash": proto["prompt_hash"], "num_fewshot": NUM_FEWSHOT,
        "lm_eval_tasks": {s: task_name(task, s) for s in raw}, "model_fingerprint": model_fp,
        "tokenizer_fingerprint": tokenizer_fp, "data_fingerprints": fps,
        "model_source": source_stamp(*adapters.source_names(model_args)), "chat_template": chat_template,
        "data_digests": {s: rows_digest(ds, task.text_keys) for s, ds in raw.items()},
        "max_samples": cuts or None, "debug_run": any("[:" in str(f) for f in fps.values()), "start_time": started,
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:])})


def _finite(value):
    return None if isinstance(value, float) and not np.isfinite(value) else value


def run(model_args, data_args, study_args, training_args):
    """One zero-shot run of a model x task: config.json first, then lm-eval's scores, the per-example predictions
    and lm-eval's samples, and all_results.json last."""
    task = get_task(data_args.task_name)
    folder = folder_for(training_args.output_dir, study_args.seeds)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    raw, fps, train_labels = load_rows(task, data_args, model_args.cache_dir)
    model, tokenizer = load_lm(model_args)
    chat = study_args.zero_shot_chat_template
    if chat and not tokenizer.chat_template:
        raise UserError(f"--zero_shot_chat_template: {model_args.model_name_or_path}'s tokenizer has no chat "
                        f"template; drop the flag to score it plainly (and its pair the same way)")
    model_fp, tokenizer_fp = fingerprinting.model_fingerprint(model), fingerprinting.tokenizer_fingerprint(tokenizer)
    proto = protocol(model_args, data_args, study_args)
    start(folder, model_args, data_args, proto, raw, fps, model_fp, tokenizer_fp, started,
          hashlib.sha256(tokenizer.chat_template.encode()).hexdigest()[:16] if chat else None)
    names = {split: write_task(folder, task, split, ds) for split, ds in raw.items()}
    device = "cuda" if torch.cuda.is_available() and not training_args.use_cpu else "cpu"
    logger.info(f"zero-shot: lm-eval {lm_eval_version()} scores {', '.join(f'{len(ds)} {s}' for s, ds in raw.items())}"
                f" rows with its {task.name} prompt on {device}")
    began = time.time()
    scored = score(model.to(device), tokenizer, folder, names.values(), study_args.extraction_batch_size, chat)
    model.to("cpu")
    results, collapsed = {"eval_runtime": round(time.time() - began, 4), "num_fewshot": NUM_FEWSHOT}, []
    for split, name in names.items():
        upstream, samples = scored[name]
        metrics, rows, reason = evaluate_split(task, split, raw[split], loglikelihoods(samples, raw[split]),
                                               train_labels)
        results.update(metrics)
        results.update({f"lm_eval_{k}{task.metric_suffix(split)}": _finite(v) for k, v in upstream.items()})
        if reason:
            collapsed.append(reason + (f" ({split})" if len(names) > 1 else ""))
        layout.atomic_write_jsonl(folder / layout.predictions_file(split), rows)
        layout.atomic_write_jsonl(folder / samples_file(split), json.loads(json.dumps(samples, default=str)))
        logger.info("zero-shot " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()
                                            if "samples" not in k and v is not None))
    results.update(head_collapsed=bool(collapsed), head_collapse_reason="; ".join(collapsed) or None)
    results = {k: _finite(v) for k, v in results.items()}  # strict JSON: null, never NaN
    layout.atomic_write_json(folder / layout.RESULTS_FILE, results)  # LAST: marks the zero-shot run complete
    logger.info(f"zero-shot run complete: {folder}")

"""GLUE data from three places, all turned into the same shape: a DatasetDict whose splits have the task's
text keys (upstream names), an integer (or float, STS-B) `label`, and `idx` (row index, stable across models).
Must not tokenize or know about models.

1. the hub (`nyu-mll/glue`), when reachable;
2. `--glue_dir DIR`: the original GLUE release layout (`CoLA/train.tsv`, `MNLI/dev_matched.tsv`, ...);
3. `--train_file/--validation_file/--test_file`: csv or json, like upstream run_glue.py.

Each split also gets a fingerprint (sha256 of the file, or the datasets fingerprint for the hub) that goes
into config.json and into the feature-cache key.
"""

import csv
import hashlib
import json
import sys
from pathlib import Path

import datasets

from frozen_glue.core import compat
from frozen_glue.core.errors import UserError
from frozen_glue.core.hub import hub_offline
from frozen_glue.core.provenance import sha256_file
from frozen_glue.core.tasks import Task

csv.field_size_limit(sys.maxsize)  # a few GLUE rows are longer than csv's 128 KB default


def label_to_id(task: Task, raw, where: str):
    """Map a raw label (a name, an id, or a float for STS-B) to the task's label id; refuse anything else."""
    if task.is_regression:
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise UserError(f"{where}: STS-B score {raw!r} is not a number; fix or remove that row") from None
    text = str(raw).strip()
    if text in task.label_names:
        return task.label_names.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < task.num_labels:
        return int(text)
    raise UserError(f"{where}: label {raw!r} is not in {task.name}'s label set "
                    f"({', '.join(f'{i}={n}' for i, n in enumerate(task.label_names))}); fix the file")


def read_glue_tsv(task: Task, path: Path, labelled: bool = True) -> datasets.Dataset:
    """Read one original GLUE .tsv. No quote processing: GLUE text holds bare `"` characters."""
    layout = task.tsv
    # utf-8-sig drops MRPC's byte-order mark from the header
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if layout.header or not labelled:  # test.tsv files always have a header, CoLA's included
        header, body, first_line = rows[0] if rows else [], rows[1:], 2
    else:
        header, body, first_line = list(layout.columns), rows, 1
    text_columns = layout.text_columns
    if not labelled and task.name == "cola":
        text_columns = ("sentence",)
    needed = list(text_columns) + ([layout.label_column] if labelled else [])
    missing = [c for c in needed if c not in header]
    if missing:
        raise UserError(f"{path}: header lacks column(s) {missing} (found {header}); is this the original "
                        f"GLUE {layout.folder} file?")
    where = {c: header.index(c) for c in needed}
    columns = {key: [] for key in task.text_keys}
    labels = []
    for line_no, row in enumerate(body, start=first_line):
        if not row:  # a blank last line
            continue
        if len(row) != len(header):
            raise UserError(f"{path}:{line_no}: expected {len(header)} tab-separated columns, found {len(row)}; "
                            f"the file is damaged or not the original GLUE {layout.folder} file")
        for key, column in zip(task.text_keys, text_columns):
            columns[key].append(row[where[column]])
        labels.append(label_to_id(task, row[where[layout.label_column]], f"{path}:{line_no}") if labelled
                      else (-1.0 if task.is_regression else -1))
    columns["label"] = labels
    columns["idx"] = list(range(len(labels)))
    return datasets.Dataset.from_dict(columns)


def glue_files(task: Task, glue_dir, want_test: bool = False) -> dict:
    """{split: path} of a task's original GLUE .tsv files under `glue_dir`; a UserError naming what is missing
    (the sweep checks every asked task with it before launching anything)."""
    folder = Path(glue_dir) / task.tsv.folder
    if not Path(glue_dir).is_dir():
        raise UserError(f"--glue_dir {glue_dir} does not exist; point it at the folder that holds "
                        f"{task.tsv.folder}/ (the original GLUE download)")
    if not folder.is_dir():
        raise UserError(f"--glue_dir {glue_dir} has no {task.tsv.folder}/ folder for task {task.name}; "
                        f"download GLUE and unpack it there")
    files = {"train": folder / "train.tsv"}
    files.update(zip(task.validation_splits, (folder / f for f in task.tsv.validation_files)))
    if want_test:
        for split, name in zip(task.validation_splits, task.tsv.validation_files):
            files[split.replace("validation", "test")] = folder / name.replace("dev", "test")
    for path in files.values():
        if not path.is_file():
            raise UserError(f"{path} is missing: --glue_dir must hold the original GLUE {task.tsv.folder} files "
                            f"({', '.join(p.name for p in files.values())})")
    return files


def load_glue_dir(task: Task, glue_dir, want_test: bool):
    splits, fingerprints = {}, {}
    for split, path in glue_files(task, glue_dir, want_test).items():
        splits[split] = read_glue_tsv(task, path, labelled=not split.startswith("test"))
        fingerprints[split] = "sha256:" + sha256_file(path)
    return datasets.DatasetDict(splits), fingerprints


def load_data_files(task: Task, train_file, validation_file, test_file):
    """csv/json files like upstream: columns named by the task's text keys, `label`, optional `idx`."""
    files = {k: v for k, v in (("train", train_file), ("validation", validation_file), ("test", test_file)) if v}
    splits, fingerprints = {}, {}
    for split, path in files.items():
        path = Path(path)
        if not path.is_file():
            raise UserError(f"--{split}_file {path} does not exist")
        suffix = path.suffix.lstrip(".")
        if suffix not in ("csv", "json", "jsonl"):
            raise UserError(f"--{split}_file {path}: use a .csv or .json/.jsonl file")
        builder = "json" if suffix in ("json", "jsonl") else "csv"
        ds = datasets.load_dataset(builder, data_files=str(path), split="train")
        missing = [c for c in task.text_keys + (("label",) if split != "test" else ()) if c not in ds.column_names]
        if missing:
            raise UserError(f"{path}: missing column(s) {missing}; {task.name} needs {list(task.text_keys)} "
                            f"and 'label'")
        labels = ([label_to_id(task, v, f"{path}:row {i + 1}") for i, v in enumerate(ds["label"])]
                  if split != "test" else [-1] * len(ds))
        idx = list(ds["idx"]) if "idx" in ds.column_names else list(range(len(ds)))
        columns = {k: [str(t) for t in ds[k]] for k in task.text_keys}
        splits[split] = datasets.Dataset.from_dict({**columns, "label": labels, "idx": idx})
        fingerprints[split] = "sha256:" + sha256_file(path)
    if "validation" in splits and len(task.validation_splits) > 1:
        # one user file stands for MNLI's matched split; there is no mismatched one
        splits[task.validation_splits[0]] = splits.pop("validation")
        fingerprints[task.validation_splits[0]] = fingerprints.pop("validation")
    return datasets.DatasetDict(splits), fingerprints


def load_hub(task: Task, dataset_name, config_name, cache_dir):
    """A hub dataset id or a local dataset repo folder (one config per task, as nyu-mll/glue). Validation and
    test splits keep the hub's names (MNLI: validation_matched, validation_mismatched, test_matched, ...)."""
    config_name = config_name or task.name
    try:
        raw = datasets.load_dataset(dataset_name, config_name, cache_dir=cache_dir)
    except Exception as e:  # noqa: BLE001 - datasets raises many types (connection, not found, bad config)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        why = ("HF_HUB_OFFLINE is set and it is not in the local datasets cache" if hub_offline() and not
               Path(dataset_name).exists() else first)
        raise UserError(f"cannot load dataset {dataset_name} (config {config_name}): {why}. Pass local data with "
                        f"--glue_dir DIR (original GLUE .tsv layout) or --train_file/--validation_file "
                        f"(csv/json)") from None
    wanted = {"train", *task.validation_splits, *(s.replace("validation", "test") for s in task.validation_splits)}
    raw = datasets.DatasetDict({k: v for k, v in raw.items() if k in wanted})
    fingerprints = {split: "datasets:" + compat.dataset_fingerprint(ds) for split, ds in raw.items()}
    return raw, fingerprints


def load_glue(task: Task, args, want_test=False, cache_dir=None):
    """(DatasetDict, {split: fingerprint}) from whichever source the arguments name."""
    if args.glue_dir:
        splits, fingerprints = load_glue_dir(task, args.glue_dir, want_test)
    elif args.train_file or args.validation_file:
        splits, fingerprints = load_data_files(task, args.train_file, args.validation_file, args.test_file)
    else:
        splits, fingerprints = load_hub(task, args.dataset_name or "nyu-mll/glue", args.dataset_config_name,
                                        cache_dir)
    for split, ds in splits.items():
        if len(ds) == 0 and not split.startswith("test"):
            raise UserError(f"the {split} split of {task.name} is empty; check the data file")
    return splits, fingerprints


def select_rows(ds: datasets.Dataset, max_samples, fingerprint: str):
    """Upstream's max_*_samples: the first N rows. The fingerprint records the cut."""
    if max_samples is None or max_samples >= len(ds):
        return ds, fingerprint
    return ds.select(range(max_samples)), f"{fingerprint}[:{max_samples}]"


def rows_digest(ds: datasets.Dataset, text_keys) -> str:
    """A digest of exactly the texts and ids a split holds (for the feature-cache key)."""
    h = hashlib.sha256()
    h.update(json.dumps([list(ds["idx"])] + [list(ds[k]) for k in text_keys]).encode())
    return h.hexdigest()


def load_splits(task, data_args, args, cache_dir, eval_flag="--do_eval"):
    """(rows, fingerprints, cuts, train labels) of the splits this run uses, after the max_*_samples cuts. The train
    labels (after the same cut; None without a train split) come also when the run does not train: they make the
    majority-class control of an eval-only run. `args` says which splits the run uses (do_train, do_eval,
    do_predict: TrainingArguments or any object with them); `eval_flag` is the flag a missing validation split is
    blamed on (--zero_shot, for a zero-shot run)."""
    splits, fingerprints = load_glue(task, data_args, want_test=args.do_predict, cache_dir=cache_dir)
    limits = {"train": data_args.max_train_samples, "test": data_args.max_predict_samples}
    raw, fps, cut = {}, {}, {}
    for name, ds in splits.items():
        wanted = (name == "train" and args.do_train) or (name in task.validation_splits and args.do_eval) \
            or (name.startswith("test") and args.do_predict)
        if wanted:
            raw[name], fps[name] = select_rows(ds, limits.get(name.split("_")[0], data_args.max_eval_samples),
                                               fingerprints[name])
            if len(raw[name]) < len(ds):  # a debug run is one whose cut removed rows
                cut[name] = f"{len(raw[name])} of {len(ds)} rows"
    if args.do_train and "train" not in raw:
        raise UserError(f"--do_train needs a train split; {task.name}'s data has none (pass --train_file)")
    if args.do_eval and not any(s in raw for s in task.validation_splits):
        raise UserError(f"{eval_flag} needs a validation split; pass --validation_file or --glue_dir")
    if args.do_predict and not any(s.startswith("test") for s in raw):
        raise UserError("--do_predict needs a test split; pass --test_file or --glue_dir with test.tsv")
    train = raw.get("train") or (select_rows(splits["train"], limits["train"], "")[0] if "train" in splits else None)
    return raw, fps, cut, None if train is None else list(train["label"])

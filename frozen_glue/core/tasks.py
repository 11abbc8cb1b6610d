"""The GLUE task table and its metrics: the one place that knows each task's text keys, labels and metrics.
Must not read data files or models.

Label names and their order follow the hub's `nyu-mll/glue` dataset, so label ids mean the same whichever
source (hub, original .tsv, csv/json) the data came from.
"""

from dataclasses import dataclass

import numpy as np

from frozen_glue.core.errors import UserError
from frozen_glue.core.metrics import METRICS


@dataclass(frozen=True)
class TsvLayout:
    """Where the original GLUE release keeps a task's files and columns."""

    folder: str                      # e.g. "CoLA"
    validation_files: tuple          # one per validation split, same order as Task.validation_splits
    header: bool                     # CoLA's train/dev files have none
    columns: tuple = ()              # column names when there is no header
    text_columns: tuple = ()         # header names of the text fields, in Task.text_keys order
    label_column: str = "label"


@dataclass(frozen=True)
class Task:
    name: str
    text_keys: tuple                 # upstream (hub) field names of the text inputs
    label_names: tuple | None        # None: regression (STS-B)
    metrics: tuple                   # keys of metrics.METRICS, in the order reported
    main_metric: str                 # the one tables, figures, tests and selection use
    validation_splits: tuple
    tsv: TsvLayout

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.label_names)

    @property
    def report_metrics(self) -> tuple:
        """What tables show: the main metric first, then the others (MNLI: matched, then mismatched)."""
        if len(self.validation_splits) > 1:
            return tuple(m + self.metric_suffix(s) for s in self.validation_splits for m in self.metrics)
        return (self.main_metric,) + tuple(m for m in self.metrics if m != self.main_metric)

    def metric_suffix(self, split: str) -> str:
        """Upstream reports MNLI mismatched as eval_<metric>_mm; every other split has no suffix."""
        return "_mm" if split.endswith("_mismatched") else ""


def _tsv(folder, text_columns, label_column="label", validation_files=("dev.tsv",)):
    return TsvLayout(folder, validation_files, header=True, text_columns=text_columns, label_column=label_column)


TASKS = {
    t.name: t
    for t in [
        Task("cola", ("sentence",), ("unacceptable", "acceptable"), ("matthews_correlation",),
             "matthews_correlation", ("validation",),
             TsvLayout("CoLA", ("dev.tsv",), header=False,
                       columns=("source", "label", "original_label", "sentence"),
                       text_columns=("sentence",))),
        Task("sst2", ("sentence",), ("negative", "positive"), ("accuracy",), "accuracy", ("validation",),
             _tsv("SST-2", ("sentence",))),
        Task("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), ("accuracy", "f1"), "f1",
             ("validation",), _tsv("MRPC", ("#1 String", "#2 String"), "Quality")),
        Task("stsb", ("sentence1", "sentence2"), None, ("pearson", "spearmanr"), "pearson", ("validation",),
             _tsv("STS-B", ("sentence1", "sentence2"), "score")),
        Task("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), ("accuracy", "f1"), "f1",
             ("validation",), _tsv("QQP", ("question1", "question2"), "is_duplicate")),
        Task("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"), ("accuracy",),
             "accuracy", ("validation_matched", "validation_mismatched"),
             _tsv("MNLI", ("sentence1", "sentence2"), "gold_label",
                  validation_files=("dev_matched.tsv", "dev_mismatched.tsv"))),
        Task("qnli", ("question", "sentence"), ("entailment", "not_entailment"), ("accuracy",), "accuracy",
             ("validation",), _tsv("QNLI", ("question", "sentence"))),
        Task("rte", ("sentence1", "sentence2"), ("entailment", "not_entailment"), ("accuracy",), "accuracy",
             ("validation",), _tsv("RTE", ("sentence1", "sentence2"))),
        Task("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"), ("accuracy",), "accuracy",
             ("validation",), _tsv("WNLI", ("sentence1", "sentence2"))),
    ]
}


def get_task(name: str) -> Task:
    task = TASKS.get((name or "").lower())
    if task is None:
        raise UserError(f"unknown task {name!r}: choose one of {' '.join(TASKS)}")
    return task


def compute_metrics(task: Task, predictions, labels) -> dict:
    """GLUE metrics under upstream run_glue.py's names (no `evaluate.load`, which needs the hub).

    `predictions` are class ids for classification and float scores for STS-B.
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    out = {key: float(METRICS[key].score(predictions, labels)) for key in task.metrics}
    if len(out) > 1:
        out["combined_score"] = float(np.mean(list(out.values())))
    return out

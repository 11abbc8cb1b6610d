"""Thesis-style figures: one bar per model (mean of the main metric), std error bars, each seed as a dot.
Each function returns the matplotlib Figure so tests can inspect what was drawn. Must not compute statistics or
read runs: the numbers drawn are results.aggregate's, the tables' own."""

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from frozen_glue.core.layout import atomic_write_bytes  # noqa: E402
from frozen_glue.core.metrics import display_name  # noqa: E402
from frozen_glue.core.tasks import TASKS  # noqa: E402
from frozen_glue.report.results import aggregate  # noqa: E402

DPI = 300  # readable in a paper


def write(fig, path):
    """The figure as a PNG at `path` and as an SVG beside it (the same name, .svg: report.html inlines it; its text
    stays text), both written atomically (layout.atomic_write_bytes); closes the figure."""
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=DPI)
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "frozen-glue"}):  # stable ids: equal runs, equal files
        fig.savefig(svg, format="svg", metadata={"Date": None})
    plt.close(fig)
    atomic_write_bytes(path, png.getvalue())
    atomic_write_bytes(Path(path).with_suffix(".svg"), svg.getvalue())

def main_metric_runs(runs, task):
    return runs[(runs.task == task) & (runs.metric == TASKS[task].main_metric)]


def task_figure(runs, task, models, path=None):
    """fig_<task>.png: a bar per model with std error bars (results.aggregate: the table's numbers), seeds as dots;
    a model whose runs mix identities gets no bar, only the word 'mixed', as in the table."""
    data = main_metric_runs(runs, task)
    cells = aggregate(data, ["model"]).set_index("model")
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(models), 3.0))
    rng = np.random.default_rng(0)
    crosses = None
    for i, model in enumerate(models):
        rows = data[data.model == model]
        if not len(rows):
            continue
        cell = cells.loc[model]
        if cell["mixed"]:
            ax.text(i, 0.5, "mixed,\nnot averaged", ha="center", va="center", fontsize=7,
                    transform=ax.get_xaxis_transform())
            continue
        values = rows["value"].to_numpy()
        dead = rows["collapsed"].to_numpy(dtype=bool) if "collapsed" in rows else np.zeros(len(rows), dtype=bool)
        ax.bar(i, cell["mean"], yerr=np.nan_to_num(cell["std"]), capsize=4, color=f"C{i}", alpha=0.8, label=model)
        x = i + rng.uniform(-0.15, 0.15, len(values))
        ax.scatter(x[~dead], values[~dead], s=10, color="black", zorder=3)
        if dead.any():  # a collapsed head is no evidence about the model: drawn as a red cross
            crosses = ax.scatter(x[dead], values[dead], s=24, color="red", marker="x", zorder=4, label="collapsed head")
    handles = [h for h in (crosses, _majority_line(ax, data)) if h is not None]
    if handles:
        ax.legend(handles=handles, fontsize=7, frameon=False)
    ax.set_xticks(range(len(models)), models, rotation=20, ha="right")
    ax.set_ylabel(display_name(TASKS[task].main_metric))
    ax.set_title(task.upper() if len(task) <= 4 else task)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=DPI)
    return fig


def _majority_line(ax, rows):
    """The majority-class control as a dashed line (None when the runs carry none)."""
    majority = rows["majority"].dropna() if "majority" in rows else []
    if not len(majority):
        return None
    return ax.axhline(float(majority.iloc[0]), color="grey", linestyle="--", linewidth=1, label="majority class")


def summary_figure(runs, models, path=None):
    """fig_summary.png: every task's main metric, bars grouped by task, one colour per model."""
    tasks = [t for t in TASKS if t in set(runs.task)]
    fig, ax = plt.subplots(figsize=(1.0 + 1.1 * len(tasks), 3.2))
    width = 0.8 / max(len(models), 1)
    cells = {task: aggregate(main_metric_runs(runs, task), ["model"]).set_index("model") for task in tasks}
    for i, model in enumerate(models):
        means, stds, xs = [], [], []
        for j, task in enumerate(tasks):
            if model in cells[task].index and not cells[task].loc[model, "mixed"]:  # mixed: no bar, as in the table
                xs.append(j + (i - (len(models) - 1) / 2) * width)
                means.append(cells[task].loc[model, "mean"])
                stds.append(np.nan_to_num(cells[task].loc[model, "std"]))
        ax.bar(xs, means, width, yerr=stds, capsize=3, color=f"C{i}", alpha=0.8, label=model)
    ax.set_xticks(range(len(tasks)), [f"{t}\n({display_name(TASKS[t].main_metric)})"
                                      for t in tasks], fontsize=7)
    ax.set_ylabel("main metric (mean ± std over seeds)")
    ax.legend(fontsize=7, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(models), 4))
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=DPI)
    return fig


def layer_figure(summary_layers, task, models, path=None, majority=None, relative=False):
    """fig_layers_<task>.png: main metric vs layer, one line per model with a ±std band (where the specialized
    model starts to fall behind), and the majority-class control as a dashed line. `relative`: on relative depth
    (layer / the model's top layer), for models of different depths."""
    metric = TASKS[task].main_metric
    data = summary_layers[(summary_layers.task == task) & (summary_layers.metric == metric)]
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    for i, model in enumerate(models):
        rows = data[data.model == model].sort_values("layer")
        if rows.empty:
            continue
        x, mean, std = rows["layer"].to_numpy(), rows["mean"].to_numpy(), np.nan_to_num(rows["std"].to_numpy())
        x = x / x.max() if relative else x
        ax.plot(x, mean, marker="o", ms=3, color=f"C{i}", label=model)
        ax.fill_between(x, mean - std, mean + std, color=f"C{i}", alpha=0.2)
    if majority is not None:
        _majority_line(ax, majority)
    if relative:
        ax.set_xlabel("relative depth (layer / top layer)")
        fig.tight_layout()
        return _saved(fig, path)
    return _by_layer(fig, ax, display_name(metric), f"{_title(task)}: probe by layer", path)


def drift_figure(drift, task, path=None):
    """fig_drift_<task>.png: CKA(base, derived) by layer, one line per pair; 1 = unchanged representation."""
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    for i, ((base, derived), rows) in enumerate(drift.groupby(["base", "derived"], sort=False)):
        rows = rows.sort_values("layer")
        ax.plot(rows["layer"], rows["cka"], marker="o", ms=3, color=f"C{i}", label=f"{base} → {derived}")
    ax.set_ylim(min(0.0, float(drift["cka"].min()) - 0.05) if len(drift) else 0.0, 1.05)
    return _by_layer(fig, ax, "linear CKA (debiased)", f"{_title(task)}: representation drift", path)


def matrix_figure(matrix, task, path=None):
    """fig_drift_matrix_<task>_<base>_vs_<derived>.png: the layer x layer CKA matrix as a heatmap (rows: the
    base's layers, columns: the derived model's), for two models of different depths."""
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    image = ax.imshow(matrix.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
    ax.set_ylabel(matrix.index.name or "base layer")
    ax.set_xlabel(matrix.columns.name or "derived layer")
    ax.set_yticks(range(len(matrix.index)), [str(i) for i in matrix.index], fontsize=6)
    ax.set_xticks(range(len(matrix.columns)), [str(j) for j in matrix.columns], fontsize=6)
    fig.colorbar(image, ax=ax, label="linear CKA (debiased)")
    ax.set_title(f"{_title(task)}: layer x layer drift")
    fig.tight_layout()
    return _saved(fig, path)


def _saved(fig, path):
    if path:
        fig.savefig(path, dpi=DPI)
    return fig


def _title(task):
    return task.upper() if len(task) <= 4 else task


def _by_layer(fig, ax, ylabel, title, path):
    """The axes, legend and file of a by-layer figure."""
    ax.set_xlabel("layer (0 = embeddings)")
    # min_n_ticks=1: one probed layer leaves a view with one integer in it, where the default (two) falls back to
    # fractional ticks
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=DPI)
    return fig

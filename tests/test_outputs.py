"""Outputs other programs read (issue 20): summary.tex compiles with pdflatex + booktabs, every JSON file is strict
(null, never NaN), and the cosmetic points: grouped debug-run warnings, no W&B line from the sweep, integer layer
ticks on a one-layer figure, drift.py naming what is really missing."""

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from frozen_glue.core import layout
from frozen_glue.report import figures, results
from frozen_glue.report.latex import ascii_latex
from frozen_glue.run import writer

from conftest import ROOT

PY = sys.executable


def strict_load(path):
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}, not strict JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def write_run(root, model, task, seed, metrics, config=None, results_extra=None):
    folder = root / model / task / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"path": "cached", **(config or {})}))
    (folder / "all_results.json").write_text(json.dumps({**{f"eval_{k}": v for k, v in metrics.items()},
                                                         **(results_extra or {})}))
    return folder


def test_json_files_are_strict(tmp_path):
    """layer_results.json of a BERT's layer 0 on STS-B held a bare NaN: now null, and NaN / inf anywhere (numpy's
    too, nested) is null, through the one writer."""
    writer.write_layer_results(tmp_path, {0: {"eval_pearson": float("nan")}, 2: {"eval_pearson": 0.5}})
    assert strict_load(tmp_path / layout.LAYER_RESULTS_FILE) == {"0": {"eval_pearson": None},
                                                                 "2": {"eval_pearson": 0.5}}
    layout.atomic_write_json(tmp_path / "x.json", {"a": [np.float32("nan"), np.float64(np.inf), -math.inf, 1.5],
                                                   "b": {"c": np.float32(0.25), "d": 3, "e": True}})
    assert strict_load(tmp_path / "x.json") == {"a": [None, None, None, 1.5], "b": {"c": 0.25, "d": 3, "e": True}}
    layout.atomic_write_jsonl(tmp_path / "p.jsonl", [{"score": float("nan")}, {"score": 2.0}])
    assert "NaN" not in (tmp_path / "p.jsonl").read_text()
    assert [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()] == [{"score": None},
                                                                                               {"score": 2.0}]


def test_latex_is_ascii_with_the_tables_own_symbols():
    assert ascii_latex("0.540 ± 0.032 (n=5) †debug ⚠1/5 collapsed; big − small") == \
        r"0.540 $\pm$ 0.032 (n=5) \textsuperscript{\dag}debug \textbf{(!)}1/5 collapsed; big $-$ small"
    assert ascii_latex("café ≤ 中") == r"cafe $\leq$ ?"


def test_summary_tex_compiles_with_pdflatex_and_booktabs(tmp_path):
    """A tree with every symbol the table uses: ±, the minus sign of a difference, †debug, ⚠ collapsed."""
    root = tmp_path / "runs"
    for seed, (big, small) in enumerate(((0.5, 0.4), (0.52, 0.41), (0.54, 0.43)), start=1):
        write_run(root, "big_model", "cola", seed, {"matthews_correlation": big})
        write_run(root, "small", "cola", seed, {"matthews_correlation": small},
                  config={"debug_run": seed == 1, "max_samples": {"max_train_samples": 10}},
                  results_extra={"head_collapsed": seed == 2, "head_collapse_reason": "one class"})
    proc = subprocess.run([PY, ROOT / "analysis" / "summarize.py", "--runs", root, "--out", tmp_path / "rep"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    tex = (tmp_path / "rep" / "summary.tex").read_text()
    assert tex.isascii() and r"\toprule" in tex and r"$\pm$" in tex and "$-$" in tex and r"\dag" in tex
    assert "big\\_model" in tex  # still escaped
    if not shutil.which("pdflatex"):
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                      "\\input{rep/summary.tex}\n\\end{document}\n")
    latex = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert latex.returncode == 0 and (tmp_path / "doc.pdf").exists(), latex.stdout[-2000:]


def test_debug_runs_are_one_warning_with_a_count(tmp_path):
    root = tmp_path / "runs"
    cut = {"debug_run": True, "max_samples": {"max_train_samples": 10}}
    for seed in (1, 2, 3):
        write_run(root, "m", "cola", seed, {"matthews_correlation": 0.1}, config=cut)
    write_run(root, "m", "cola", 4, {"matthews_correlation": 0.1},
              config={"debug_run": True, "max_samples": {"max_train_samples": 20}})
    _, warnings = results.load_runs(root)
    debug = [w for w in warnings if "debug run" in w]
    assert debug == ['4 debug run(s) (max_*_samples {"max_train_samples": 10}, {"max_train_samples": 20}), labelled '
                     '†debug in tables: m/cola']


def test_the_sweep_prints_no_wandb_line_without_report_to_wandb(tmp_path, assets):
    models = tmp_path / "m.tsv"
    models.write_text(f"gpt2\t{assets['base']}\t-\t\n")
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "PYTHON": PY, "MODELS": str(models),
           "RUNS": str(tmp_path / "runs"), "GLUE_DIR": str(assets["glue_dir"]), "TASKS": "cola", "SEEDS": "1",
           "LAUNCHER": "python", "DRY_RUN": "1"}
    proc = subprocess.run(["bash", ROOT / "launch" / "all_tasks.sh"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0 and "run_glue_frozen.py" in proc.stdout
    assert "WANDB" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("layers", [[3], [0], [0, 1]])
def test_a_few_layers_get_integer_ticks(layers):
    drift = pd.DataFrame({"base": "a", "derived": "b", "layer": layers, "cka": 0.5, "rows": 10})
    fig = figures.drift_figure(drift, "cola")
    fig.canvas.draw()
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks == [float(x) for x in layers]
    figures.plt.close(fig)


def test_drift_without_the_models_file_says_what_is_missing(tmp_path):
    cache = tmp_path / "cache"
    (cache / "ab12").mkdir(parents=True)
    (cache / "ab12" / "model.json").write_text(json.dumps({"model_name_or_path": "/models/gpt2", "top_layer": 2}))
    proc = subprocess.run([PY, ROOT / "analysis" / "drift.py", "--feature_cache", cache, "--task", "cola",
                           "--models", "gpt2", "comet", "--models_file", tmp_path / "none.tsv"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: gpt2 is neither an alias of the models file read (--models_file) nor a model cached in {cache} (it "
        f"holds: /models/gpt2); pass the models file your sweep used, or one of those names")

"""Summarize never crashes on a real tree (issue 29): generated run trees with 1-4 models (aliases that look like
the report's own column names among them), 1-5 seeds, collapsed and constant heads, classification and regression
tasks, a missing validation split and NaN or null scores. Every tree gives a report; every JSON written is strict;
summary.tex compiles with pdflatex + booktabs when pdflatex is installed. The tree that once crashed the slice
table is a named test."""

import argparse
import json
import math
import shutil
import subprocess

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from frozen_glue.report import compare, report

ALIASES = ["A", "base", "p", "n", "slice", "difference", "score_A", "verdict"]
TASKS = {"cola": ("matthews_correlation", ["validation"]), "sst2": ("accuracy", ["validation"]),
         "stsb": ("pearson", ["validation"]), "mnli": ("accuracy", ["validation_matched", "validation_mismatched"])}
TEXT = {"cola": ["sentence"], "sst2": ["sentence"], "stsb": ["sentence1", "sentence2"],
        "mnli": ["premise", "hypothesis"]}
WORDS = "the cat did not sit on a mat yesterday and it was never happy".split()


def write_tree(root, draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    models = draw(st.lists(st.sampled_from(ALIASES), min_size=1, max_size=4, unique=True))
    tasks = draw(st.lists(st.sampled_from(sorted(TASKS)), min_size=1, max_size=3, unique=True))
    n = draw(st.integers(12, 40))
    for task in tasks:
        metric, splits = TASKS[task]
        regression, classes = task == "stsb", 3 if task == "mnli" else 2
        texts = {key: [" ".join(rng.choice(WORDS, rng.integers(1, 12))) for _ in range(n)] for key in TEXT[task]}
        gold = rng.uniform(0, 5, n).round(2) if regression else rng.integers(0, classes, n)
        for model in models:
            kind = draw(st.sampled_from(["fine", "constant", "collapsed", "nan score", "null score"]))
            for seed in range(1, draw(st.integers(1, 5)) + 1):
                folder = root / model / task / f"seed{seed}"
                folder.mkdir(parents=True)
                results = {"head_collapsed": kind in ("constant", "collapsed")}
                kept = splits if not draw(st.booleans()) or len(splits) == 1 else splits[:1]  # a missing split
                for split in kept:
                    rows = []
                    for i in range(n):
                        if regression:
                            score = 2.5 if kind == "constant" else float(gold[i] + rng.normal(0, 1))
                            rows.append({"idx": i, "label": float(gold[i]), "score": score, "prediction": score})
                        else:
                            probs = rng.dirichlet(np.ones(classes))
                            if kind == "constant":
                                probs = np.eye(classes)[0] * 0.9 + 0.1 / classes
                            rows.append({"idx": i, "label": int(gold[i]), "prediction": int(np.argmax(probs)),
                                         "probs": probs.round(4).tolist(), "pvi": float(rng.normal())})
                        rows[-1].update({key: texts[key][i] for key in TEXT[task]})
                    (folder / f"predictions_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
                    suffix = "_mm" if split.endswith("mismatched") else ""
                    value = {"nan score": float("nan"), "null score": None}.get(kind, float(rng.uniform(0, 1)))
                    results[f"eval_{metric}{suffix}"] = value
                config = {"path": "cached", "protocol": {"learning_rate": 0.01}, "protocol_hash": "h"}
                (folder / "config.json").write_text(json.dumps(config))
                (folder / "all_results.json").write_text(json.dumps(results))  # NaN written as NaN, as a foreign tool
    return models


def summarize(runs, out):
    args = argparse.Namespace(runs=str(runs), out=str(out), reference=None, models=None, slice=[],
                              n_resamples=200, feature_cache=None)
    return report.summarize(args)


def strict(path):
    def refuse(constant):
        raise ValueError(f"{path}: {constant} is not strict JSON")

    json.loads(path.read_text(), parse_constant=refuse)


def check_outputs(out):
    assert (out / "report.md").is_file()
    for path in out.glob("*.json"):
        strict(path)
    if shutil.which("pdflatex"):
        doc = out / "doc.tex"
        doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\\input{summary.tex}"
                       "\\end{document}\n")
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=out,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-2000:]


@settings(max_examples=12, deadline=None, phases=[Phase.generate], suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_summarize_finishes_on_every_generated_tree(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("tree")
    models = write_tree(root / "runs", data.draw)
    try:
        code = summarize(root / "runs", root / "out")
    except report.UserError as e:  # the only allowed way out: a one-line error, when no run has a number at all
        assert "no complete run" in str(e), e
        return
    assert code == 0
    check_outputs(root / "out")
    if len(models) > 1 and (root / "out" / "disagreements.csv").exists():
        import pandas as pd

        dis = pd.read_csv(root / "out" / "disagreements.csv")
        tested = dis["p"].notna()
        inside = (dis["ci_low"] <= 0) & (dis["ci_high"] >= 0)
        assert (inside[tested] == dis["verdict"][tested].str.startswith("no evidence")).all()
        assert dis["verdict"][~tested].str.startswith(compare.NOT_TESTED).all()


def test_two_models_one_seed_50_sst2_rows_one_head_collapsed_once_crashed_the_slice_table(tmp_path):
    """The tree of the review: two models x 1 seed x 50 SST-2 rows, one head collapsed, and an alias that is also a
    column of the slice table ('p'): the slice table had two columns named p and Holm raised on a 2-D array."""
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 50)
    for model, collapsed in (("p", True), ("b", False)):
        folder = tmp_path / "runs" / model / "sst2" / "seed1"
        folder.mkdir(parents=True)
        pred = np.zeros(50, int) if collapsed else np.where(rng.random(50) < 0.8, gold, 1 - gold)
        rows = [{"idx": i, "label": int(g), "prediction": int(p), "probs": [0.7, 0.3] if p == 0 else [0.3, 0.7],
                 "sentence": " ".join(rng.choice(WORDS, 6))} for i, (g, p) in enumerate(zip(gold, pred))]
        (folder / "predictions_validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / "config.json").write_text(json.dumps({"path": "cached"}))
        (folder / "all_results.json").write_text(json.dumps({"eval_accuracy": float(np.mean(pred == gold)),
                                                             "head_collapsed": collapsed}))
    assert summarize(tmp_path / "runs", tmp_path / "out") == 0
    check_outputs(tmp_path / "out")
    assert (tmp_path / "out" / "summary.tex").is_file() and (tmp_path / "out" / "slices_sst2.csv").is_file()
    assert math.isfinite(float(__import__("pandas").read_csv(tmp_path / "out" / "disagreements.csv")["p"][0]))

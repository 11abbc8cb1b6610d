"""analysis/: the summary of a hand-made run tree, disagreements, slices, figures, and the promise never to write
into runs/ (the statistics' known answers: test_statistics.py)."""

import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from scipy import stats as sps

from frozen_glue.core.errors import UserError
from frozen_glue.report import compare, figures, predictions, results

from conftest import ROOT

# ------------------------------------------------------------------------------------------- a run tree

SCORES = {  # model: task: metric: values over seeds 1-5
    "big": {"cola": {"matthews_correlation": [0.50, 0.52, 0.54, 0.56, 0.58]},
            "mnli": {"accuracy": [0.80, 0.81, 0.82, 0.83, 0.84], "accuracy_mm": [0.70, 0.71, 0.72, 0.73, 0.74]},
            "stsb": {"pearson": [0.80, 0.82, 0.84, 0.86, 0.88], "spearmanr": [0.79, 0.80, 0.81, 0.82, 0.83]}},
    "small": {"cola": {"matthews_correlation": [0.40, 0.41, 0.42, 0.43, 0.44]},
              "mnli": {"accuracy": [0.60, 0.62, 0.64, 0.66, 0.68], "accuracy_mm": [0.61, 0.62, 0.63, 0.64, 0.65]},
              "stsb": {"pearson": [0.70, 0.70, 0.70, 0.70, 0.75], "spearmanr": [0.6, 0.6, 0.6, 0.6, 0.6]}},
}


def write_run(root, model, task, seed, metrics, debug=False, preds=None):
    folder = root / model / task / f"seed{seed}"
    folder.mkdir(parents=True)
    cuts = {"max_train_samples": 10} if debug else None
    (folder / "config.json").write_text(json.dumps({"path": "cached", "debug_run": debug, "max_samples": cuts}))
    for split, rows in (preds or {}).items():
        (folder / f"predictions_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "all_results.json").write_text(json.dumps({f"eval_{k}": v for k, v in metrics.items()}))
    return folder


@pytest.fixture
def run_tree(tmp_path):
    root = tmp_path / "runs"
    for model, tasks in SCORES.items():
        for task, metrics in tasks.items():
            for i in range(5):
                write_run(root, model, task, i + 1, {m: v[i] for m, v in metrics.items()},
                          debug=(model, task, i) == ("small", "cola", 4))
    (root / "small" / "mnli" / "seed6").mkdir()  # incomplete: no all_results.json
    (root / "small" / "mnli" / "seed6" / "config.json").write_text("{}")
    return root


def test_summary_of_hand_made_tree(run_tree):
    runs, warnings = results.load_runs(run_tree)
    assert any("incomplete run" in w and w.endswith("small/mnli/seed6") for w in warnings)
    assert "1 debug run(s) (max_*_samples {\"max_train_samples\": 10}), labelled †debug in tables: small/cola" \
        in warnings  # one line for all of them, not one per run
    summary = results.summarize(runs)
    assert [(r.task, r.metric) for r in summary.drop_duplicates(["task", "metric"]).itertuples()] == [
        ("cola", "matthews_correlation"), ("stsb", "pearson"), ("stsb", "spearmanr"), ("mnli", "accuracy"),
        ("mnli", "accuracy_mm")]
    assert len(summary) == 10
    for model, tasks in SCORES.items():
        for task, metrics in tasks.items():
            for metric, values in metrics.items():
                row = summary[(summary.model == model) & (summary.task == task) & (summary.metric == metric)].iloc[0]
                assert row["mean"] == pytest.approx(np.mean(values)) and row["n"] == 5
                assert row["std"] == pytest.approx(np.std(values, ddof=1))
    assert summary[summary.debug].model.tolist() == ["small"] and summary[summary.debug].task.tolist() == ["cola"]
    pairs = results.pairwise(runs)
    cola = pairs[pairs.task == "cola"].iloc[0]
    assert cola["diff"] == pytest.approx(0.54 - 0.42)
    assert cola["welch_p"] == pytest.approx(sps.ttest_ind(SCORES["big"]["cola"]["matthews_correlation"],
                                                          SCORES["small"]["cola"]["matthews_correlation"],
                                                          equal_var=False).pvalue)
    wide = results.wide_table(summary, pairs)
    assert wide.loc[0, "big"] == "0.540 ± 0.032 (n=5)" and wide.loc[0, "small"].endswith("(n=5) †debug")


def test_fewer_seeds_are_reported_not_dropped(run_tree):
    (run_tree / "big" / "cola" / "seed5" / "all_results.json").write_text("{corrupt")
    runs, warnings = results.load_runs(run_tree)
    assert any("corrupt all_results.json" in w for w in warnings)
    summary = results.summarize(runs)
    n = summary[(summary.task == "cola")].set_index("model")["n"]
    assert n["big"] == 4 and n["small"] == 5


def test_missing_or_empty_runs_dir(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        results.load_runs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no complete run"):
        results.load_runs(tmp_path / "empty")


def tree_digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def summarize_cli(*args):
    proc = subprocess.run([sys.executable, str(ROOT / "analysis" / "summarize.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_summarize_cli_writes_everything_and_never_touches_runs(run_tree, tmp_path):
    before = tree_digest(run_tree)
    out = tmp_path / "reports"
    ref = tmp_path / "ref.csv"
    ref.write_text("model,task,metric,mean,std\nbig,cola,matthews_correlation,0.53,0.02\n"
                   "small,cola,matthews_correlation,0.30,0.01\n")
    code, log = summarize_cli("--runs", run_tree, "--out", out, "--reference", ref)
    assert code == 0, log
    assert tree_digest(run_tree) == before
    for name in ("summary.md", "summary.csv", "summary.tex", "report.md", "fig_summary.png", "fig_cola.png",
                 "fig_mnli.png", "fig_stsb.png", "reference.csv", "significance.csv"):
        assert (out / name).exists(), name
    csv = pd.read_csv(out / "summary.csv")
    assert list(csv.columns[:8]) == ["task", "metric", "big_mean", "big_std", "big_n", "small_mean", "small_std",
                                     "small_n"]
    assert "big-small_welch_p" in csv.columns and len(csv) == 5
    ref_table = pd.read_csv(out / "reference.csv")
    assert ref_table["within_2std"].tolist() == [True, False]
    assert "warning: incomplete run" in log and "sample std (ddof=1)" in (out / "summary.md").read_text()
    code, log = summarize_cli("--runs", run_tree, "--out", run_tree / "reports")
    assert code == 2 and "analysis never writes there" in log and tree_digest(run_tree) == before


def test_one_model_gives_a_table_without_comparison(tmp_path):
    write_run(tmp_path / "runs", "only", "cola", 1, {"matthews_correlation": 0.5})
    code, log = summarize_cli("--runs", tmp_path / "runs", "--out", tmp_path / "rep")
    assert code == 0 and "one model only" in log
    assert "only" in (tmp_path / "rep" / "summary.md").read_text()


# ------------------------------------------------------------------------------------------ disagreements


def pred_rows(golds, preds, text="s"):
    return [{"idx": i, "label": g, "prediction": p, "probs": [1.0 - p, float(p)], "sentence": f"{text} {i}"}
            for i, (g, p) in enumerate(zip(golds, preds))]


def test_disagreement_counts_equal_hand_count(tmp_path):
    gold = [1, 1, 1, 0, 0, 0, 1, 0]
    a = [1, 1, 0, 0, 1, 0, 1, 1]  # right: 0 1 3 5 6
    b = [1, 0, 1, 0, 0, 1, 0, 1]  # right: 0 2 3 4
    root = tmp_path / "runs"
    write_run(root, "A", "cola", 1, {"matthews_correlation": 0}, preds={"validation": pred_rows(gold, a)})
    write_run(root, "B", "cola", 1, {"matthews_correlation": 0}, preds={"validation": pred_rows(gold, b)})
    pa = predictions.read_predictions(root, "A", "cola", "validation", seed=1)
    pb = predictions.read_predictions(root, "B", "cola", "validation", seed=1)
    res, table = compare.disagreement("cola", pa, pb, ("A", "B"), n_resamples=200)
    assert (res["both_right"], res["only_a_right"], res["only_b_right"], res["both_wrong"]) == (2, 3, 2, 1)
    assert res["disagree"] == 5 and sorted(table["idx"]) == [1, 2, 4, 5, 6]
    assert res["mcnemar_p"] == pytest.approx(1.0)
    assert {"sentence", "gold", "pred_A", "pred_B", "probs_A", "probs_B"} <= set(table.columns)


def test_majority_vote_over_seeds(tmp_path):
    root = tmp_path / "runs"
    gold = [1, 0, 1]
    for seed, preds in enumerate(([1, 0, 0], [1, 1, 0], [0, 0, 1]), start=1):
        write_run(root, "A", "cola", seed, {"matthews_correlation": 0}, preds={"validation": pred_rows(gold, preds)})
    voted = predictions.read_predictions(root, "A", "cola", "validation")
    assert voted["prediction"].tolist() == [1, 0, 0]


def test_mismatched_idx_or_gold_is_refused(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "A", "cola", 1, {}, preds={"validation": pred_rows([1, 0, 1], [1, 0, 1])})
    rows = pred_rows([1, 0, 1, 0], [1, 0, 1, 0])
    write_run(root, "B", "cola", 1, {}, preds={"validation": rows})
    write_run(root, "C", "cola", 1, {}, preds={"validation": pred_rows([0, 0, 1], [1, 0, 1])})
    pa = predictions.read_predictions(root, "A", "cola", "validation", seed=1)
    with pytest.raises(UserError, match="cover different examples"):
        compare.disagreement("cola", pa, predictions.read_predictions(root, "B", "cola", "validation", seed=1), ("A", "B"))
    with pytest.raises(UserError, match="disagree on gold labels"):
        compare.disagreement("cola", pa, predictions.read_predictions(root, "C", "cola", "validation", seed=1), ("A", "C"))


def test_disagreements_cli(tmp_path):
    root = tmp_path / "runs"
    gold = [i % 2 for i in range(40)]
    write_run(root, "A", "cola", 1, {"matthews_correlation": 1}, preds={"validation": pred_rows(gold, gold)})
    write_run(root, "B", "cola", 1, {"matthews_correlation": 0},
              preds={"validation": pred_rows(gold, [1 - g if i < 10 else g for i, g in enumerate(gold)])})
    proc = subprocess.run([sys.executable, str(ROOT / "analysis" / "disagreements.py"), "--task", "cola", "--models",
                           "A", "B", "--runs", str(root), "--out", str(tmp_path / "rep"), "--seed", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "both right 30, only A right 10, only B right 0, both wrong 0 (10 disagree)" in proc.stdout
    assert len(pd.read_csv(tmp_path / "rep" / "disagreements_cola.tsv", sep="\t")) == 10


# ----------------------------------------------------------------------------------------------- slices

PAST_TENSE = [line.rstrip("\n").split("\t") for line in (Path(__file__).parent / "data" / "past_tense.tsv")
              .read_text().splitlines() if line[:1] in "01"]


def precision_recall(flag):
    flagged = [(label, kind) for label, kind, text in PAST_TENSE if flag(text)]
    true_pos = sum(label == "1" for label, _ in flagged)
    return true_pos / max(len(flagged), 1), true_pos / sum(label == "1" for label, _, _ in PAST_TENSE), flagged


def test_past_tense_slice_precision_and_recall_on_a_labelled_fixture():
    """48 hand-labelled sentences: regular and irregular pasts, past auxiliaries, and the look-alikes that are not
    past tense — present passives ('is parked'), participial adjectives ('a used car', 'seems tired'), present
    perfect, modals, present forms that equal past ones ('read', 'put')."""
    assert len(PAST_TENSE) >= 40 and {k for _, k, _ in PAST_TENSE} >= {"passive", "adjective", "irregular",
                                                                      "perfect", "modal"}
    precision, recall, flagged = precision_recall(compare.is_past_tense)
    assert precision >= 0.9 and recall >= 0.9, flagged
    if compare.past_tense_method() == compare.PAST_TENSE_RULE:  # the rule: none of the look-alikes is flagged
        assert {kind for label, kind in flagged if label == "0"} == set()
    # the fixture discriminates: 'a past form appears anywhere' (the rule this slice had before) fails it
    from lemminflect import getAllInflections, getAllLemmas

    def naive(text):
        return any(w in getAllInflections(lemma, upos="VERB").get("VBD", ())
                   for w in compare.WORD.findall(text.lower())
                   for lemma in getAllLemmas(w, upos="VERB").get("VERB", ()))

    assert precision_recall(naive)[0] < 0.8


def test_slices_and_holm_ordering():
    texts = ["this is not good"] * 30 + ["a fine day today"] * 30
    gold = np.array([1, 0] * 30)
    a = gold.copy()
    b = gold.copy()
    b[:30] = 1 - b[:30]  # B fails every negated sentence
    frame = lambda p: pd.DataFrame({"label": gold, "prediction": p, "sentence": texts,  # noqa: E731
                                    "probs": [[0.5, 0.5]] * 60}, index=pd.Index(range(60), name="idx"))
    table = compare.slices("cola", frame(a), frame(b), ("A", "B"), user_slices=["fine=fine day"], n_resamples=300)
    significant = table["significant"].tolist()
    assert significant == sorted(significant, reverse=True)  # significant slices listed first
    assert bool(table.set_index("slice").loc["negation", "significant"])
    fine = table[table.slice == "fine"].iloc[0]
    assert fine["n"] == 30 and fine["difference"] == 0 and not fine["significant"]
    with pytest.raises(UserError, match="name=REGEX"):
        compare.slice_masks(["x"], ["noequals"])


def test_a_slice_difference_averages_every_seed_not_the_first():
    # 20 negated sentences: A's seed 1 gets all right, seed 2 all wrong (A's slice score 0.5 over seeds);
    # B gets 15/20 right on both seeds (0.75). The slice's difference is 0.5 - 0.75 = -0.25; a rule that
    # reads one seed gives +0.25.
    texts = ["this is not good"] * 20 + ["a fine day today"] * 20
    gold = np.array([1, 0] * 20)
    a1, a2, b = gold.copy(), gold.copy(), gold.copy()
    a2[:20] = 1 - a2[:20]
    b[:5] = 1 - b[:5]

    def frame(seeds):
        out = pd.DataFrame({"label": gold, "prediction": seeds[0], "sentence": texts, "probs": [[0.5, 0.5]] * 40},
                           index=pd.Index(range(40), name="idx"))
        out.attrs["per_seed"] = np.stack(seeds)
        return out

    table = compare.slices("sst2", frame([a1, a2]), frame([b, b]), ("A", "B"), n_resamples=300).set_index("slice")
    neg = table.loc["negation"]
    assert neg["score_A"] == pytest.approx(0.5) and neg["score_B"] == pytest.approx(0.75)
    assert neg["difference"] == pytest.approx(-0.25)


# ---------------------------------------------------------------------------------------------- figures


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_figures_draw_one_bar_per_model(run_tree, tmp_path):
    runs, _ = results.load_runs(run_tree)
    fig = figures.task_figure(runs, "cola", ["big", "small"], tmp_path / "cola.png")
    ax = fig.axes[0]
    assert len(ax.patches) == 2 and ax.get_ylabel() == "Matthews correlation"
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.54, 0.42])
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in dots) == 10  # seeds as dots
    w, h = png_size(tmp_path / "cola.png")
    assert (w, h) == (int(fig.get_figwidth() * figures.DPI), int(fig.get_figheight() * figures.DPI))
    fig = figures.summary_figure(runs, ["big", "small"], tmp_path / "summary.png")
    assert len(fig.axes[0].patches) == 2 * 3  # one bar per model per task
    png_size(tmp_path / "summary.png")


def test_summarize_two_models_disagreements_and_slices_end_to_end(tmp_path):
    """A run tree of two models on SST-2 whose predictions differ exactly on the negated sentences: the report's
    disagreement counts, McNemar p, bootstrap difference and negation slice are the hand-computed ones."""
    root = tmp_path / "runs"
    texts = [f"this is not good {i}" for i in range(20)] + [f"a fine day {i}" for i in range(20)]
    gold = [i % 2 for i in range(40)]
    for model, wrong in (("A", set()), ("B", set(range(20)))):
        for seed in (1, 2, 3):
            rows = [{"idx": i, "label": g, "prediction": 1 - g if i in wrong else g, "probs": [0.9, 0.1] if (1 - g if i in wrong else g) == 0 else [0.1, 0.9],
                     "sentence": t} for i, (t, g) in enumerate(zip(texts, gold))]
            write_run(root, model, "sst2", seed, {"accuracy": 0.5 if wrong else 1.0}, preds={"validation": rows})
    code, log = summarize_cli("--runs", root, "--out", tmp_path / "rep", "--n_resamples", "500")
    assert code == 0, log
    table = pd.read_csv(tmp_path / "rep" / "disagreements_sst2.tsv", sep="\t")
    assert sorted(table["idx"]) == list(range(20))
    dis = pd.read_csv(tmp_path / "rep" / "disagreements.csv").iloc[0]
    assert (dis.both_right, dis.only_a_right, dis.only_b_right, dis.both_wrong) == (20, 20, 0, 0)
    assert dis.mcnemar_p == pytest.approx(2 * 0.5 ** 20) and dis.difference == pytest.approx(0.5)
    slices = pd.read_csv(tmp_path / "rep" / "slices_sst2.csv").set_index("slice")
    assert list(pd.read_csv(tmp_path / "rep" / "slices_sst2.csv").columns) == [
        "slice", "n", "score_A", "score_B", "difference", "ci_low", "ci_high", "ci_level", "p", "p_holm",
        "significant", "flag", "note"]
    neg = slices.loc["negation"]
    assert (neg.n, neg.score_A, neg.score_B, neg.difference) == (20, 1.0, 0.0, 1.0) and bool(neg.significant)
    assert slices.loc["length 1-5", "difference"] == pytest.approx(0.5)  # every sentence has 4-5 words
    assert list(slices["significant"]) == sorted(slices["significant"], reverse=True)  # significant first
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| sst2   | validation | A         | B         |  40 |         20 |         20 |          0 | exact McNemar" \
           " | < 0.001" in report

"""analysis/: statistics with known answers, the summary of a hand-made run tree, disagreements, slices,
figures, and the promise never to write into runs/."""

import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from matplotlib.collections import PathCollection
from scipy import stats as sps
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from frozen_glue import compare, figures, results, stats
from frozen_glue.errors import UserError
from frozen_glue.metrics import METRICS, display_name

# ------------------------------------------------------------------------------------------- known answers


def test_mean_std_and_welch_equal_scipy():
    a, b = [0.51, 0.53, 0.55, 0.52, 0.54], [0.44, 0.47, 0.45, 0.48, 0.46]
    mean, std, n = stats.mean_std(a)
    assert (mean, n) == (pytest.approx(0.53), 5)
    assert std == pytest.approx(np.std(a, ddof=1)) and std == pytest.approx(0.0158113883)
    assert stats.welch_p(a, b) == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue)
    assert np.isnan(stats.welch_p([0.5], b)) and np.isnan(stats.mean_std([0.5])[1])


def test_mcnemar_exact_on_fixed_table():
    # 2 x binom(n=12, p=0.5) tail at 2: (1 + 12 + 66) / 4096 * 2
    assert stats.mcnemar_exact(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert stats.mcnemar_exact(5, 5) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["accuracy", "f1", "matthews_correlation", "pearson", "spearmanr"])
def test_fast_metrics_equal_sklearn_scipy(name):
    rng = np.random.default_rng(1)
    for _ in range(5):
        if name in ("pearson", "spearmanr"):
            g, p = rng.uniform(0, 5, 50), rng.uniform(0, 5, 50)
            want = (sps.pearsonr if name == "pearson" else sps.spearmanr)(p, g)[0]
        else:
            g, p = rng.integers(0, 3 if name != "f1" else 2, 50), rng.integers(0, 3 if name != "f1" else 2, 50)
            want = {"accuracy": accuracy_score, "f1": f1_score, "matthews_correlation": matthews_corrcoef}[name](g, p)
        assert METRICS[name].fast(p.astype(float), g.astype(float)) == pytest.approx(want)


def test_bootstrap_ci_contains_truth_and_excludes_zero_when_large():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 2000)
    a = np.where(rng.random(2000) < 0.9, gold, 1 - gold)
    b = np.where(rng.random(2000) < 0.6, gold, 1 - gold)
    diff, low, high, p = stats.paired_bootstrap("accuracy", a, b, gold)
    assert low < 0.3 < high and low > 0 and p < 0.01  # true accuracy difference 0.9 - 0.6
    same = np.where(rng.random(2000) < 0.9, gold, 1 - gold)
    _, low, high, p = stats.paired_bootstrap("accuracy", a, same, gold)
    assert low < 0 < high and p > 0.05


def test_holm_matches_statsmodels_order():
    assert list(stats.holm([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])


# known answers computed by hand: a wrong statistic (sklearn against itself, Student for Welch, an unpaired
# bootstrap, Bonferroni for Holm) fails them

def test_glue_metrics_known_answers():
    from frozen_glue.tasks import TASKS, compute_metrics

    # TP 3 (0, 3, 5), TN 1 (1), FP 1 (2), FN 1 (4)
    pred, gold = [1, 0, 1, 1, 0, 1], [1, 0, 0, 1, 1, 1]
    mrpc = compute_metrics(TASKS["mrpc"], pred, gold)
    assert mrpc["accuracy"] == pytest.approx(4 / 6) and mrpc["f1"] == pytest.approx(6 / 8)  # 2TP / (2TP + FP + FN)
    assert mrpc["combined_score"] == pytest.approx((4 / 6 + 6 / 8) / 2)
    # (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (3 - 1) / sqrt(4 * 4 * 2 * 2)
    assert compute_metrics(TASKS["cola"], pred, gold)["matthews_correlation"] == pytest.approx(0.25)
    assert compute_metrics(TASKS["mnli"], [0, 1, 2, 2], [0, 1, 1, 2])["accuracy"] == pytest.approx(0.75)
    # pearson: centred p [-1.5 -.5 .5 1.5], g [-1.75 .25 1.25 .25]: 3.5 / sqrt(5 * 4.75)
    # spearman: ranks of g [1 2.5 4 2.5]: 3 / sqrt(5 * 4.5)
    stsb = compute_metrics(TASKS["stsb"], [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 5.0, 4.0])
    assert stsb["pearson"] == pytest.approx(3.5 / np.sqrt(5 * 4.75)) and stsb["pearson"] == pytest.approx(0.718185)
    assert stsb["spearmanr"] == pytest.approx(3 / np.sqrt(5 * 4.5)) and stsb["spearmanr"] == pytest.approx(0.632456)
    for name, value in (("accuracy", 4 / 6), ("f1", 0.75), ("matthews_correlation", 0.25)):
        assert METRICS[name].fast(np.array(pred, float), np.array(gold, float)) == pytest.approx(value)
    assert METRICS["pearson"].fast(np.array([1.0, 2, 3, 4]), np.array([2.0, 4, 5, 4])) == pytest.approx(0.718185)
    assert METRICS["spearmanr"].fast(np.array([1.0, 2, 3, 4]), np.array([2.0, 4, 5, 4])) == pytest.approx(
        0.632456)


def test_welch_known_answer_that_student_gets_wrong():
    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 20.0, 30.0]  # variances 2.5 and 100
    se2 = 2.5 / 5 + 100 / 3
    t = (3.0 - 20.0) / np.sqrt(se2)
    df = se2 ** 2 / ((2.5 / 5) ** 2 / 4 + (100 / 3) ** 2 / 2)  # Welch-Satterthwaite
    welch = 2 * sps.t.sf(abs(t), df)
    pooled = (4 * 2.5 + 2 * 100) / 6
    student = 2 * sps.t.sf(abs((3.0 - 20.0) / np.sqrt(pooled * (1 / 5 + 1 / 3))), 6)
    assert df == pytest.approx(2.0602, abs=1e-4) and welch == pytest.approx(0.09644, abs=1e-5)
    assert stats.welch_p(a, b) == pytest.approx(welch, rel=1e-9)
    assert student == pytest.approx(0.00767, abs=1e-5)  # Student's p would pass as significant at 0.05


def test_paired_bootstrap_is_paired():
    """B equals A except on 8 of 200 examples: the paired CI of the difference is narrow and excludes 0, where
    resampling the two models independently (unpaired) gives a CI that includes 0."""
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 2, 200)
    a = np.where(np.arange(200) < 120, gold, 1 - gold)   # accuracy 0.60
    b = a.copy()
    b[:8] = 1 - b[:8]                                      # 8 of A's right answers wrong: 0.56
    diff, low, high, p = stats.paired_bootstrap("accuracy", a, b, gold, n_resamples=2000)
    assert diff == pytest.approx(0.04) and 0 < low < high < 0.08 and p < 0.05
    right_a, right_b = a == gold, b == gold
    unpaired = [right_a[rng.integers(0, 200, 200)].mean() - right_b[rng.integers(0, 200, 200)].mean()
                for _ in range(2000)]
    assert np.percentile(unpaired, 2.5) < 0 < np.percentile(unpaired, 97.5)


def test_holm_differs_from_raw_and_from_bonferroni():
    p = [0.01, 0.02, 0.045]
    holm = stats.holm(p)
    assert list(holm) == pytest.approx([0.03, 0.04, 0.045])      # step-down: 3p, 2p, 1p, kept monotone
    assert list(np.minimum(np.array(p) * 3, 1)) != pytest.approx(list(holm))  # Bonferroni: 0.03, 0.06, 0.135
    raw_significant, holm_significant = [x < 0.05 for x in [0.01, 0.03, 0.04]], stats.holm([0.01, 0.03, 0.04]) < 0.05
    assert raw_significant == [True, True, True] and list(holm_significant) == [True, False, False]


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
    pa = compare.read_predictions(root, "A", "cola", "validation", seed=1)
    pb = compare.read_predictions(root, "B", "cola", "validation", seed=1)
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
    voted = compare.read_predictions(root, "A", "cola", "validation")
    assert voted["prediction"].tolist() == [1, 0, 0]


def test_mismatched_idx_or_gold_is_refused(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "A", "cola", 1, {}, preds={"validation": pred_rows([1, 0, 1], [1, 0, 1])})
    rows = pred_rows([1, 0, 1, 0], [1, 0, 1, 0])
    write_run(root, "B", "cola", 1, {}, preds={"validation": rows})
    write_run(root, "C", "cola", 1, {}, preds={"validation": pred_rows([0, 0, 1], [1, 0, 1])})
    pa = compare.read_predictions(root, "A", "cola", "validation", seed=1)
    with pytest.raises(UserError, match="cover different examples"):
        compare.disagreement("cola", pa, compare.read_predictions(root, "B", "cola", "validation", seed=1), ("A", "B"))
    with pytest.raises(UserError, match="disagree on gold labels"):
        compare.disagreement("cola", pa, compare.read_predictions(root, "C", "cola", "validation", seed=1), ("A", "C"))


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
            rows = [{"idx": i, "label": g, "prediction": 1 - g if i in wrong else g, "probs": [0.5, 0.5],
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
        "slice", "n", "A", "B", "difference", "ci_low", "ci_high", "p", "p_holm", "significant", "note"]
    neg = slices.loc["negation"]
    assert (neg.n, neg.A, neg.B, neg.difference) == (20, 1.0, 0.0, 1.0) and bool(neg.significant)
    assert slices.loc["length 1-5", "difference"] == pytest.approx(0.5)  # every sentence has 4-5 words
    assert list(slices["significant"]) == sorted(slices["significant"], reverse=True)  # significant first
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| sst2   | validation | A         | B         |  40 |         20 |         20 |          0 | exact McNemar" \
           " | < 0.001" in report


def test_metric_registry_names_directions_and_mismatched_keys():
    from frozen_glue.metrics import get_metric
    from frozen_glue.tasks import TASKS

    assert {m for t in TASKS.values() for m in t.metrics} | {t.main_metric for t in TASKS.values()} <= set(METRICS)
    assert display_name("accuracy_mm") == "accuracy (mismatched)" and display_name("spearmanr") == "Spearman ρ"
    assert get_metric("accuracy_mm") is METRICS["accuracy"]
    assert METRICS["matthews_correlation"].better(0.3, 0.2) and not METRICS["matthews_correlation"].better(0.2, 0.2)
    assert METRICS["loss"].better(0.2, 0.3)  # lower is better


def _hsic_by_quadruples(k, l):
    """The unbiased HSIC as its U-statistic (Song et al. 2012): the mean over ordered distinct quadruples of
    h = 1/24 sum over their permutations (t, u, v, w) of k_tu l_tu + k_tu l_vw - 2 k_tu l_tv. Brute force, an
    independent route to the closed form the package uses."""
    import itertools

    n, total, count = len(k), 0.0, 0
    for quad in itertools.permutations(range(n), 4):
        h = sum(k[t, u] * l[t, u] + k[t, u] * l[v, w] - 2 * k[t, u] * l[t, v]
                for t, u, v, w in itertools.permutations(quad)) / 24
        total, count = total + h, count + 1
    return total / count


def test_linear_cka_known_answers():
    from frozen_glue.stats import linear_cka

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    xc, yc = x - x.mean(0), y - y.mean(0)
    k, l = xc @ xc.T, yc @ yc.T
    want = _hsic_by_quadruples(k, l) / np.sqrt(_hsic_by_quadruples(k, k) * _hsic_by_quadruples(l, l))
    assert linear_cka(x, y) == pytest.approx(want, rel=1e-9)
    x = rng.normal(size=(200, 16))
    assert linear_cka(x, x) == pytest.approx(1.0)
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert linear_cka(x, 3.5 * x @ rotation + 2.0) == pytest.approx(1.0)  # rotation, isotropic scale, shift
    assert linear_cka(x, x * np.arange(1, 17)) < 0.99  # anisotropic scaling is a different representation
    # debiased: unrelated representations read near 0 even with few rows and many dimensions (biased CKA: ~0.5)
    assert abs(linear_cka(rng.normal(size=(50, 200)), rng.normal(size=(50, 200)))) < 0.05

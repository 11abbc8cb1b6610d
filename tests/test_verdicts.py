"""A comparison a paper can cite: the primary test is example-level and counts both the dev sample and the seeds,
Holm corrects across a report's comparisons, each comparison gets a verdict in words, a deterministic probe is one
run, and a control pair says 'control'. Known answers on hand-made run trees."""

import json

import numpy as np
import pandas as pd
import pytest

from frozen_glue.core import layout
from frozen_glue.measures import stats
from frozen_glue.report import compare, predictions, results

from conftest import bootstrap_test
from test_analysis import pred_rows, summarize_cli, write_run


def handful_pair(root, task="sst2", n=200, a_only=3, b_only=1, seeds=5):
    """Two models whose predictions differ on a few dev rows only, the same rows in every seed: only A is right on
    the first `a_only`, only B on the next `b_only`. Each seed also gets one wrong row of its own (the same for both
    models), so the seeds' scores vary by a hair while the models' do not at all."""
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, n)
    texts = [f"sentence number {i}" for i in range(n)]
    for model, wrong in (("A", range(a_only, a_only + b_only)), ("B", range(a_only))):
        for seed in range(1, seeds + 1):
            pred = gold.copy()
            pred[100 + seed] = 1 - pred[100 + seed]  # the seed's own mistake
            pred[list(wrong)] = 1 - pred[list(wrong)]
            rows = [{"idx": i, "label": int(g), "prediction": int(p), "probs": [0.2, 0.8] if p else [0.8, 0.2], "sentence": t}
                    for i, (g, p, t) in enumerate(zip(gold, pred, texts))]
            write_run(root, model, task, seed, {"accuracy": float(np.mean(pred == gold))}, preds={"validation": rows})
    return gold


def test_a_handful_of_rows_is_no_evidence_though_welch_says_p_below_0001(tmp_path):
    root = tmp_path / "runs"
    handful_pair(root)
    runs, _ = results.load_runs(root)
    pairs = results.pairwise(runs)
    assert pairs.iloc[0]["diff"] == pytest.approx(2 / 200) and pairs.iloc[0]["welch_p"] < 0.001
    code, log = summarize_cli("--runs", root, "--out", tmp_path / "rep", "--n_resamples", "2000")
    assert code == 0, log
    dis = pd.read_csv(tmp_path / "rep" / "disagreements.csv").iloc[0]
    assert dis["difference"] == pytest.approx(0.01) and dis["ci_low"] < 0 < dis["ci_high"]
    assert dis["p"] > 0.05 and dis["verdict"] == "no evidence of a difference"
    # McNemar on the seed-majority votes beside it: 3 vs 1 discordant pairs: exact p = 2 * (1 + 4) / 16 = 0.625
    assert (dis["only_a_right"], dis["only_b_right"]) == (3, 1) and dis["test_p"] == pytest.approx(0.625)
    report = (tmp_path / "rep" / "report.md").read_text()
    first = report.split("\n## ")[1]
    assert first.startswith("Verdicts") and "- sst2: A vs B: no evidence of a difference (accuracy +0.010" in first
    assert report.index("## Verdicts") < report.index("## Main metric per task")
    assert "(seed-to-seed p< 0.001)" in report  # Welch is still shown, and said to be seed-to-seed only


def test_a_real_difference_gets_a_verdict_with_its_direction(tmp_path):
    root = tmp_path / "runs"
    handful_pair(root, a_only=40, b_only=0)
    code, log = summarize_cli("--runs", root, "--out", tmp_path / "rep", "--n_resamples", "1000")
    assert code == 0, log
    dis = pd.read_csv(tmp_path / "rep" / "disagreements.csv").iloc[0]
    assert dis["ci_low"] > 0 and dis["verdict"] == "A better"
    assert "- sst2: A better (A − B: accuracy +0.200" in (tmp_path / "rep" / "report.md").read_text()


def test_hierarchical_bootstrap_counts_the_seeds():
    """The same dev rows, but B's seeds scatter: a bootstrap over examples alone (the seed-majority vote) sees a
    clear difference, the two-level one a wider interval."""
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, 400)
    a = np.tile(gold, (5, 1))
    b = np.tile(gold, (5, 1))
    for s in range(5):  # each B seed wrong on its own 40-80 rows
        rows = rng.choice(400, 40 + 10 * s, replace=False)
        b[s, rows] = 1 - b[s, rows]
    _, lo1, hi1, _ = bootstrap_test("accuracy", a[:1], b[:1], gold, 1000)
    _, lo5, hi5, _ = bootstrap_test("accuracy", a, b, gold, 1000)
    assert hi5 - lo5 > hi1 - lo1
    diff, *_ = bootstrap_test("accuracy", a, b, gold, 200)
    assert diff == pytest.approx(np.mean((a == gold).mean(1)) - np.mean((b == gold).mean(1)))
    # the p never reads 0: with every resample above 0 it is 2 / (R + 1)
    assert bootstrap_test("accuracy", a, 1 - a, gold, 99)[3] == pytest.approx(2 / 100)


def with_p(p, sign, r=1999):
    """A bootstrap distribution of R resamples whose bootstrap p is `p` (p = 2 (1 + k) / (R + 1): k resamples on
    the far side of 0) and whose bulk lies on `sign`'s side."""
    k = round(p * (r + 1) / 2) - 1
    return sign * np.concatenate([-np.ones(k), np.linspace(0.01, 0.1, r - k)])


def family(specs, metric="accuracy"):
    return pd.DataFrame([{"task": t, "model_a": "A", "model_b": "B", "metric": metric, "difference": sign * 0.05,
                          "p": stats.bootstrap_p(with_p(p, sign)), "distribution": with_p(p, sign)}
                         for t, sign, p in specs])


def test_holm_runs_across_the_reports_comparisons():
    """Two comparisons at p 0.03 and 0.04: each alone is significant, Holm across both keeps neither (0.06, 0.06);
    the verdicts follow the corrected p, and so do the intervals beside them."""
    out = compare.verdicts(family([("sst2", 1, 0.03), ("rte", -1, 0.04)]))
    assert list(out["p_holm"]) == pytest.approx([0.06, 0.06])
    assert list(out["verdict"]) == ["no evidence of a difference"] * 2
    assert (out["ci_low"] < 0).all() and (out["ci_high"] > 0).all()
    # the procedure stopped at the first step (0.03 > 0.05 / 2): both are decided at that level, 97.5 %
    assert list(out["ci_level"]) == pytest.approx([0.975, 0.975])
    out = compare.verdicts(family([("sst2", 1, 0.01), ("rte", -1, 0.02)]))  # 0.02, 0.02: both kept
    assert list(out["verdict"]) == ["A better", "B better"]
    assert list(out["ci_level"]) == pytest.approx([0.975, 0.95])  # step 1 at 0.05 / 2, step 2 at 0.05
    assert out.loc[0, "ci_low"] > 0 and out.loc[1, "ci_high"] < 0
    loss = compare.verdicts(family([("sst2", -1, 0.001), ("rte", 1, 0.5)], metric="loss"))  # lower is better
    assert loss.loc[0, "verdict"] == "A better" and loss.loc[1, "verdict"] == "no evidence of a difference"


def test_holm_levels_stop_where_the_procedure_stops():
    """m = 3, p = 0.01, 0.03, 0.04 (sorted by hand: thresholds 0.05/3, 0.05/2, 0.05): the first is rejected at
    0.0167, the second fails at 0.025, and the third, below 0.05 on its own, is not rejected and is decided at the
    level where the procedure stopped (0.025), not at 0.05 (where its interval would exclude 0)."""
    rejected, level = stats.holm_levels([0.04, 0.01, 0.03, float("nan")])
    assert list(rejected) == [False, True, False, False]
    assert list(level[:3]) == pytest.approx([0.025, 0.05 / 3, 0.025]) and np.isnan(level[3])


def test_an_interval_excludes_zero_exactly_when_the_p_is_at_most_its_level():
    rng = np.random.default_rng(5)
    for _ in range(200):
        dist = rng.normal(rng.uniform(-0.2, 0.2), 0.1, int(rng.integers(20, 3000)))
        p = stats.bootstrap_p(dist)
        for level in (0.05, 0.01, 0.05 / 7, 0.05 / 60, p, p * 0.999):
            low, high = stats.bootstrap_interval(dist, level)
            assert (low > 0 or high < 0) == (p <= level), (p, level, low, high)


def test_a_large_family_still_reaches_a_verdict_and_a_null_never_does():
    """4 models x 10 task-splits = 60 comparisons. A 95 % vs 55 % accuracy gap is 'A better' beside an interval
    that excludes 0 (with a fixed 2000 resamples the smallest p, 2 / 2001, times 60 is 0.06: never significant);
    the null comparisons of the same family read 'no evidence', at every family size."""
    assert stats.resamples_for(60) >= 2 * 60 / 0.05 and stats.resamples_for(1) == 2000
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 2, 100)
    strong_a = np.where(rng.random((3, 100)) < 0.95, gold, 1 - gold)
    strong_b = np.where(rng.random((3, 100)) < 0.55, gold, 1 - gold)
    for m in (1, 7, 60):
        r = stats.resamples_for(m)
        rows = []
        for i in range(m):
            a, b = (strong_a, strong_b) if i == 0 else (np.where(rng.random((3, 100)) < 0.7, gold, 1 - gold)
                                                        for _ in range(2))
            diff, dist = stats.hierarchical_distribution("accuracy", a, b, gold, n_resamples=r)
            rows.append({"task": f"t{i}", "model_a": "A", "model_b": "B", "metric": "accuracy", "difference": diff,
                         "p": stats.bootstrap_p(dist), "distribution": dist})
        out = compare.verdicts(pd.DataFrame(rows))
        assert out.loc[0, "verdict"] == "A better" and out.loc[0, "ci_low"] > 0, m
        assert out.loc[0, "ci_level"] == pytest.approx(1 - 0.05 / m)
        assert (out.loc[1:, "verdict"] == "no evidence of a difference").all(), m
        assert ((out.loc[1:, "ci_low"] <= 0) & (out.loc[1:, "ci_high"] >= 0)).all(), m


def test_an_even_number_of_seeds_is_combined_by_mean_probability(tmp_path):
    """Two seeds that split 1-1 on every row: a majority vote would break the tie toward class 0; the combined
    prediction is the class of the higher mean probability, and exact ties are counted."""
    root = tmp_path / "runs"
    probs = {1: [[0.6, 0.4], [0.45, 0.55], [0.5, 0.5]], 2: [[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]]}
    for seed, rows in probs.items():
        preds = [int(np.argmax(p)) for p in rows]
        write_run(root, "A", "sst2", seed, {"accuracy": 0.5}, preds={"validation": [
            {"idx": i, "label": 1, "prediction": pr, "probs": p, "sentence": f"s{i}"}
            for i, (pr, p) in enumerate(zip(preds, rows))]})
    voted = predictions.read_predictions(root, "A", "sst2", "validation")
    # row 0: votes 0 / 1, mean [0.45, 0.55] -> 1; row 1: votes 1 / 0, mean [0.675, 0.325] -> 0; row 2: a tie
    assert list(voted["prediction"]) == [1, 0, 0] and voted.attrs["ties"] == 1


def test_a_deterministic_probe_is_one_run_without_seed_statistics(tmp_path):
    root = tmp_path / "runs"
    for model, acc in (("A", 0.70), ("B", 0.65)):
        for seed in (1, 2, 3):
            folder = write_run(root, model, "sst2", seed, {"accuracy": acc},
                               preds={"validation": pred_rows([0, 1, 1], [0, 1, seed % 2])})
            config = json.loads((folder / "config.json").read_text())
            (folder / "config.json").write_text(json.dumps({**config, "protocol": {"probe": "logistic"},
                                                            "protocol_hash": "p"}))
            (folder / layout.LAYER_RESULTS_FILE).write_text(json.dumps({"0": {"eval_accuracy": acc - 0.1},
                                                                        "2": {"eval_accuracy": acc}}))
    runs, _ = results.load_runs(root)
    assert len(runs) == 2  # one run per model, not three
    layers = results.summarize_layers(results.load_layers(layout.iter_runs(root)[0]))
    assert len(layers) == 4 and set(layers["n"]) == {1}  # the layer curves count it once too
    # and the example-level comparison reads its first run only: seed 1's predictions, one row of per-seed votes
    first = predictions.read_predictions(root, "A", "sst2", "validation")
    assert first.attrs["per_seed"].shape == (1, 3) and list(first["prediction"]) == [0, 1, 1]
    summary = results.summarize(runs)
    wide = results.wide_table(summary, results.pairwise(runs))
    assert wide.loc[0, "A"] == "0.700 (deterministic probe, one run)"
    assert wide.loc[0, "A − B"] == "+0.050"  # no Welch p across copies of one fit


def test_a_random_init_pair_is_a_control_not_a_settings_difference(tmp_path):
    root = tmp_path / "runs"
    for model, random_init in (("m", False), ("m-random", True)):
        for seed in (1, 2):
            folder = write_run(root, model, "sst2", seed, {"accuracy": 0.8 if not random_init else 0.5 + seed / 100})
            config = json.loads((folder / "config.json").read_text())
            proto = {"random_init": random_init, "learning_rate": 0.01}
            (folder / "config.json").write_text(json.dumps({**config, "protocol": proto,
                                                            "protocol_hash": str(random_init)}))
    runs, _ = results.load_runs(root)
    pairs = results.pairwise(runs)
    assert pairs.iloc[0]["kind"] == "control"
    wide = results.wide_table(results.summarize(runs), pairs)
    assert wide.loc[0, "m − m-random"].endswith("‡control") and "settings differ" not in wide.loc[0, "m − m-random"]


def test_mixed_cells_are_mixed_in_tables_controls_and_figures(tmp_path):
    """One aggregator: a model whose runs have two identities is averaged nowhere: not in the table, the controls
    or the figures (which draw no bar for it)."""
    from frozen_glue.report import figures

    root = tmp_path / "runs"
    for seed, fp in ((1, "x"), (2, "x"), (3, "y")):
        folder = write_run(root, "m", "sst2", seed, {"accuracy": 0.5 + seed / 10})
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "model_fingerprint": fp}))
        all_results = json.loads((folder / "all_results.json").read_text())
        (folder / "all_results.json").write_text(json.dumps({**all_results, "eval_majority_accuracy": 0.5}))
    runs, warnings = results.load_runs(root)
    assert any("m/sst2 mixes runs of different identities (the model's weights differ)" in w for w in warnings)
    summary = results.summarize(runs)
    assert summary.loc[0, "mixed"] == "the model's weights differ" and summary.loc[0, "mean"] != summary.loc[0, "mean"]
    assert results.controls(runs).loc[0, "m"] == "mixed"
    fig = figures.task_figure(runs, "sst2", ["m"])
    assert not fig.axes[0].patches and "mixed" in fig.axes[0].texts[0].get_text()
    fig = figures.summary_figure(runs, ["m"])
    assert not [p for p in fig.axes[0].patches if p.get_height()]


def test_the_primary_test_joins_per_seed_predictions_on_idx_not_on_file_order(tmp_path):
    """B's prediction files list the rows in reverse order: the seeds' predictions must still be paired with A's by
    idx, giving the very numbers of the ordered files."""
    ordered, reversed_ = tmp_path / "ordered", tmp_path / "reversed"
    handful_pair(ordered)
    handful_pair(reversed_)
    for seed_dir in (reversed_ / "B" / "sst2").iterdir():
        path = seed_dir / "predictions_validation.jsonl"
        path.write_text("".join(reversed(path.read_text().splitlines(keepends=True))))
    got = {}
    for root in (ordered, reversed_):
        a = predictions.read_predictions(root, "A", "sst2", "validation")
        b = predictions.read_predictions(root, "B", "sst2", "validation")
        got[root] = compare.disagreement("sst2", a, b, ("A", "B"), n_resamples=200)[0]
    assert got[reversed_]["difference"] == pytest.approx(0.01) == got[ordered]["difference"]
    assert (got[reversed_]["ci_low"], got[reversed_]["ci_high"]) == (got[ordered]["ci_low"], got[ordered]["ci_high"])

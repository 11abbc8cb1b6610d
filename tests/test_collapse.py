"""A dead head is flagged, not read as a model difference: known answers for the collapse rule, a run whose head
can only learn one class, and the marks it gets in tables, figures and comparisons."""

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from frozen_glue.core.tasks import TASKS
from frozen_glue.demo import tiny
from frozen_glue.measures.diagnostics import association_p, collapse_reason
from frozen_glue.report import figures
from frozen_glue.report import results as run_results

from conftest import TRAIN, results, run


def test_collapse_rule_known_answers():
    cola = TASKS["cola"]
    # all one class
    assert collapse_reason(cola, [[2.0, 1.0], [3.0, 0.0]], [0, 1]) == "every validation prediction is class 0 " \
                                                                     "(unacceptable)"
    # 100 rows, 50 per class. 30 right of each: MCC (30*30 - 20*20) / 50^2 = 0.2, z = 0.2 * sqrt(100) = 2.0,
    # one-sided p = 0.02275 < 0.05: associated with the gold labels, not collapsed
    gold = np.array([0] * 50 + [1] * 50)
    def logits(right):  # `right` of each class predicted correctly
        pred = np.concatenate([np.r_[np.zeros(right), np.ones(50 - right)], np.r_[np.ones(right), np.zeros(50 - right)]])
        return np.stack([1 - pred, pred], 1)
    assert association_p(cola, logits(30).argmax(1), gold) == pytest.approx((0.2, 0.0227501), abs=1e-6)
    assert collapse_reason(cola, logits(30), gold) is None
    # 28 right of each: MCC (784 - 484) / 2500 = 0.12, z = 1.2, p = 0.11507: indistinguishable from the majority
    # control. (The old rule, a loss above the label prior's, would call this head healthy when its logits are sharp)
    assert association_p(cola, logits(28).argmax(1), gold) == pytest.approx((0.12, 0.1150697), abs=1e-6)
    assert collapse_reason(cola, logits(28), gold) == (
        "validation predictions are not significantly associated with the gold labels (MCC 0.120, one-sided p "
        "0.115): no better than the majority-class control")
    # the CoLA seeds (1043 dev rows): MCC 0.036 and -0.004 are both collapsed (z = 1.16 and < 0), not only the
    # better one
    assert sps.norm.sf(0.036 * math.sqrt(1043)) > 0.05 and sps.norm.sf(-0.004 * math.sqrt(1043)) > 0.05


def test_collapse_rule_is_monotone_in_the_score():
    """Of two seeds on the same rows the one with the higher MCC never has the larger p: if the better one is
    flagged, so is the worse (unless the worse one is not even... it is: p only grows as MCC falls)."""
    gold = np.array([0] * 50 + [1] * 50)
    ps = []
    for right in range(25, 51):
        pred = np.concatenate([np.r_[np.zeros(right), np.ones(50 - right)], np.r_[np.ones(right), np.zeros(50 - right)]])
        ps.append(association_p(TASKS["cola"], pred, gold)[1])
    assert ps == sorted(ps, reverse=True)


def test_collapse_rule_stsb_edges():
    """The issue's STS-B edges: a weak head (Pearson 0.27 on 1500 rows) whose MSE is a hair above the train mean's is
    NOT collapsed; a head whose scores barely move around the mean IS, even when their tiny wiggle correlates."""
    stsb = TASKS["stsb"]
    rng = np.random.default_rng(0)
    gold = rng.uniform(0, 5, 1500)
    z = (gold - gold.mean()) / gold.std()
    weak = 2.5 + 1.0 * (0.27 * z + math.sqrt(1 - 0.27 ** 2) * rng.standard_normal(1500))
    r = sps.pearsonr(weak, gold)[0]
    assert 0.18 < r < 0.30 and np.mean((weak - gold) ** 2) > np.mean((gold.mean() - gold) ** 2)  # old rule: flagged
    assert collapse_reason(stsb, weak[:, None], gold) is None
    flat = 2.5 + 0.02 * z + 0.01 * rng.standard_normal(1500)
    assert sps.pearsonr(flat, gold)[1] < 0.001  # significantly correlated, and still nothing but the mean
    assert collapse_reason(stsb, flat[:, None], gold).startswith("the validation scores are constant (spread 0.022")
    assert collapse_reason(stsb, [[2.5], [2.5], [2.5]], [1.0, 3.0, 4.0]).startswith("the validation scores are constant")
    noise = rng.standard_normal(1500)
    noise = 2.5 + noise - (noise @ z) / (z @ z) * z  # spread fine, r = 0 exactly: collapsed by the test
    assert collapse_reason(stsb, noise[:, None], gold).startswith("validation Pearson r")


@pytest.fixture(scope="module")
def one_class_glue(tmp_path_factory):
    """CoLA whose train split holds one class only: any head learns to predict that class for everything."""
    root = tiny.write_glue_dir(tmp_path_factory.mktemp("oneclass") / "glue", n_train=80, n_dev=40, tasks=("cola",))
    lines = (root / "CoLA" / "train.tsv").read_text().splitlines()
    (root / "CoLA" / "train.tsv").write_text("".join(
        "\t".join([ln.split("\t")[0], "1", "", ln.split("\t")[3]]) + "\n" for ln in lines))
    return root


@pytest.mark.parametrize("cached", [False, True])
def test_a_collapsed_head_is_flagged_everywhere(script, assets, tmp_path, capsys, one_class_glue, cached):
    cache = ["--feature_cache", tmp_path / "cache"] if cached else []
    runs = tmp_path / "runs"
    for alias, glue in (("dead", one_class_glue), ("alive", assets["glue_dir"])):
        code, out, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "cola",
                             "--glue_dir", glue, "--output_dir", runs / alias / "cola", *TRAIN, "--seeds", "1", "2",
                             *cache)
        assert code == 0, err
        if alias == "dead":
            assert "warning: the head learnt nothing: every validation prediction is class 1 (acceptable)" in out
    dead, alive = results(runs / "dead" / "cola" / "seed1"), results(runs / "alive" / "cola" / "seed1")
    assert dead["head_collapsed"] is True and dead["eval_matthews_correlation"] == 0.0
    assert dead["head_collapse_reason"] == "every validation prediction is class 1 (acceptable)"
    assert alive["head_collapsed"] is False and alive["head_collapse_reason"] is None
    table, warnings = run_results.load_runs(runs)
    assert sum("collapsed head (every validation prediction is class 1" in w for w in warnings) == 2
    summary = run_results.summarize(table)
    wide = run_results.wide_table(summary, run_results.pairwise(table))
    assert wide.loc[0, "dead"].endswith("(n=2) ⚠2/2 collapsed") and "collapsed" not in wide.loc[0, "alive"]
    assert wide.loc[0, "alive − dead"].endswith("⚠2 collapsed head(s): not a model difference")
    fig = figures.task_figure(table, "cola", ["dead", "alive"])
    crosses = [c for c in fig.axes[0].collections if c.get_label() == "collapsed head"]
    assert len(crosses) == 1 and len(crosses[0].get_offsets()) == 2  # both dead seeds, as red crosses
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["collapsed head", "majority class"]
    # the majority-class control (predicting the train majority: MCC 0) is drawn as a dashed line at its score
    [line] = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "majority class"]
    assert list(line.get_ydata()) == [0.0, 0.0] and dead["eval_majority_matthews_correlation"] == 0.0
    assert json.loads((runs / "dead" / "cola" / "seed2" / "all_results.json").read_text())["head_collapsed"]


def test_a_sweep_of_mostly_collapsed_heads_ends_with_what_to_try(tmp_path, caplog):
    from frozen_glue.sweep import sweep

    folders = []
    for i, dead in enumerate([True, True, False]):
        folder = tmp_path / f"seed{i}"
        folder.mkdir()
        (folder / "all_results.json").write_text(json.dumps({"head_collapsed": dead}))
        folders.append(folder)
    with caplog.at_level("INFO", logger="frozen_glue.sweep.sweep"):
        sweep.collapsed_hint(folders + [tmp_path / "never-ran"])
    assert "2 of 3 heads of this sweep collapsed (learnt nothing)" in caplog.text and "--head_learning_rates" in \
        caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="frozen_glue.sweep.sweep"):
        sweep.collapsed_hint(folders[1:])  # 1 of 2: not most
    assert "collapsed" not in caplog.text


def config_of(path="cached", rule="pooler", pooling="auto", standardize=False, rates=(1e-4, 1e-3, 1e-2, 1e-1),
              epochs=3.0, max_train=None):
    return {"path": path, "pooling": {"rule": rule},
            "args": {"study": {"pooling": pooling, "standardize_features": standardize, "probe": "head",
                               "head_learning_rates": list(rates) or None},
                     "training": {"learning_rate": 5e-5, "num_train_epochs": epochs, "max_steps": -1},
                     "data": {"max_train_samples": max_train}}}


def test_collapse_advice_names_the_situation_and_never_what_the_run_already_did():
    from frozen_glue.measures.diagnostics import collapse_advice

    # MiniLM on the old default: the pooler, raw features, lr at the grid's top, 3 epochs, 400 rows
    advice = collapse_advice(config_of(max_train=400), {"train_samples": 400},
                             {"chosen": {"learning_rate": 0.1, "weight_decay": 0.0}})
    assert advice == ("the head reads the pooler output, which a sentence encoder was never trained to produce: "
                      "--pooling mean; raw feature scale (features that vary little around a large mean keep an "
                      "AdamW head at the prior): --standardize_features; the chosen learning rate 0.1 is the edge "
                      "of the grid: extend --head_learning_rates above it; 3 epoch(s): --num_train_epochs 10; only "
                      "400 train rows (--max_train_samples 400): raise it")
    # every one of those already done: nothing to recommend, and none of their flags is repeated
    done = collapse_advice(config_of(rule="mean", pooling="mean", standardize=True, epochs=10.0),
                           {"train_samples": 2000}, {"chosen": {"learning_rate": 1e-2}})
    assert done == "no cause this tool can name from the run's settings"
    # the lowest rate chosen points below the grid; the Trainer path (no grid) is pointed at the cached path
    low = collapse_advice(config_of(rule="mean", pooling="mean", standardize=True, epochs=10.0),
                          {"train_samples": 5000}, {"chosen": {"learning_rate": 1e-4}})
    assert low == "the chosen learning rate 0.0001 is the edge of the grid: extend --head_learning_rates below it"
    trainer = collapse_advice(config_of(path="trainer", rule="last_non_pad", rates=(), epochs=10.0),
                              {"train_samples": 5000})
    assert trainer == ("raw feature scale (features that vary little around a large mean keep an AdamW head at the "
                       "prior): --standardize_features with --feature_cache DIR; one learning rate (5e-05) was "
                       "tried: a grid chosen on a train hold-out, --head_learning_rates 1e-4 1e-3 1e-2 1e-1 (with "
                       "--feature_cache DIR)")
    # a convex probe on the same features does no better at the top layer (gap 0.030 <= 0.05): the features are
    # the cause, named first; a probe 0.06 ahead (gap > 0.05) names no such cause. Layer 10 is the top, not "2"
    convex = {"layers": {"2": {"head": 0.0, "convex": 0.5, "gap": 0.5}, "10": {"head": 0.0, "convex": 0.03,
                                                                               "gap": 0.03}}}
    features = collapse_advice(config_of(rule="mean", pooling="mean", standardize=True, epochs=10.0),
                               {"train_samples": 2000}, {"chosen": {"learning_rate": 1e-2}}, convex)
    assert features == ("a convex probe on the same features scores 0.030 against the head's 0.000 (convex.json, "
                        "layer 10): the features hold little of this task at these rows, not the head; more train "
                        "rows or another layer (--probe_layers all)")
    convex["layers"]["10"] = {"head": 0.0, "convex": 0.06, "gap": 0.06}
    assert collapse_advice(config_of(rule="mean", pooling="mean", standardize=True, epochs=10.0),
                           {"train_samples": 2000}, {"chosen": {"learning_rate": 1e-2}}, convex) == \
        "no cause this tool can name from the run's settings"
    convex["layers"]["10"] = {"head": 0.0, "convex": 0.05, "gap": 0.05}  # at the flag's line: not flagged, so no
    assert collapse_advice(config_of(rule="mean", pooling="mean", standardize=True, epochs=10.0),  # head to blame
                           {"train_samples": 2000}, {}, convex).startswith("a convex probe on the same features")

"""A dead head is flagged, not read as a model difference: known answers for the collapse rule, a run whose head
can only learn one class, and the marks it gets in tables, figures and comparisons."""

import json
import math

import numpy as np
import pytest
from conftest import TRAIN, results, run

from frozen_glue import figures, results as run_results, tiny
from frozen_glue.diagnostics import collapse_reason
from frozen_glue.tasks import TASKS


def test_collapse_rule_known_answers():
    cola, stsb = TASKS["cola"], TASKS["stsb"]
    # all one class
    assert collapse_reason(cola, [[2.0, 1.0], [3.0, 0.0]], [0, 1]) == "every validation prediction is class 0 " \
                                                                     "(unacceptable)"
    # train prior [0.75, 0.25]; validation labels [0, 1]: prior loss -(ln .75 + ln .25) / 2 = 0.8370
    prior = -(math.log(0.75) + math.log(0.25)) / 2
    assert prior == pytest.approx(0.836988, abs=1e-6)
    weak = np.array([[0.0, 0.4], [0.4, 0.0]])  # both wrong, mildly: loss ln(1 + e^0.4) = 0.913 > prior, two classes
    loss = math.log(1 + math.exp(0.4))
    assert loss == pytest.approx(0.913015, abs=1e-6) and loss > prior
    assert collapse_reason(cola, weak, [0, 1], [0, 0, 0, 1]) == (
        f"validation loss {loss:.4g} is no better than always predicting the train label prior ({prior:.4g})")
    good = np.array([[2.0, 0.0], [0.0, 2.0]])  # loss 0.127 < prior
    assert collapse_reason(cola, good, [0, 1], [0, 0, 0, 1]) is None
    # STS-B: a constant score; an MSE above the train mean's; a useful score
    assert collapse_reason(stsb, [[2.5], [2.5], [2.5]], [1.0, 3.0, 4.0]) == "every validation score is 2.5"
    # train mean 2.0; gold [1, 3]: mean MSE 1.0; scores [3, 1] give MSE 4.0
    assert collapse_reason(stsb, [[3.0], [1.0]], [1.0, 3.0], [1.0, 3.0]) == (
        "validation MSE 4 is no better than predicting the train mean (1)")
    assert collapse_reason(stsb, [[1.2], [2.9]], [1.0, 3.0], [1.0, 3.0]) is None


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

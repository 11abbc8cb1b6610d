"""Rules of the report's example-level comparison (compare.py), stated with answers written out here (mutation
testing, docs/mutants.md): the primary test's result, the verdict in words, the bits each example lost, what a
collapsed side is flagged with, the built-in slices and the past-tense rule."""

import numpy as np
import pandas as pd
import pytest

from frozen_glue.core.errors import UserError
from frozen_glue.report import compare


def frame(idx, labels, **columns):
    return pd.DataFrame({"label": labels, **columns}, index=pd.Index(idx, name="idx"))


def row(**over):
    base = {"task": "sst2", "split": "validation", "model_a": "base", "model_b": "comet", "metric": "accuracy",
            "difference": 0.0471, "ci_level": 0.99167, "ci_low": 0.0213, "ci_high": 0.0744, "p_holm": 0.00213,
            "verdict": "base better"}
    return {**base, **over}


def test_the_verdict_in_a_sentence():
    assert compare.verdict_sentence(row()) == (
        "sst2: base better (base − comet: accuracy +0.047, 99.17% CI at the Holm level [+0.021, +0.074], "
        "Holm-corrected p = 0.00213).")
    assert compare.verdict_sentence(row(split="validation_mismatched", task="mnli", verdict="no evidence of a "
                                        "difference", difference=-0.001, ci_low=-0.01, ci_high=0.008)) == (
        "mnli (validation_mismatched): base vs comet: no evidence of a difference (accuracy -0.001, 99.17% CI at the "
        "Holm level [-0.010, +0.008], Holm-corrected p = 0.00213).")
    assert compare.verdict_sentence(row(verdict=compare.NOT_TESTED + " (collapsed heads: comet)")) == (
        "sst2: base vs comet: not tested: the metric is undefined on every resample (constant predictions) "
        "(collapsed heads: comet).")
    no_split = row()
    del no_split["split"]
    assert compare.verdict_sentence(no_split).startswith("sst2: base better (")


def test_the_bits_each_example_lost():
    base = frame([1, 2, 3], [1, 0, 1], sentence=["a", "b", "c"], pvi=[1.0, 0.5, 2.0])
    derived = frame([3, 2, 1], [1, 0, 1], sentence=["c", "b", "a"], pvi=[1.0, -0.5, 0.0])
    table = compare.bits_lost("sst2", base, derived, ("base", "comet"))
    assert list(table.columns) == ["idx", "sentence", "gold", "pvi_base", "pvi_comet", "bits_lost"]
    assert table.values.tolist() == [[1, "a", 1, 1.0, 0.0, 1.0], [2, "b", 0, 0.5, -0.5, 1.0],
                                     [3, "c", 1, 2.0, 1.0, 1.0]]  # ties keep idx order (a stable sort)
    derived.loc[3, "pvi"] = -1.0
    assert compare.bits_lost("sst2", base, derived, ("base", "comet"))["idx"].tolist() == [3, 1, 2]
    empty = compare.bits_lost("sst2", base, derived.drop(columns="pvi"), ("base", "comet"))
    assert empty.empty and list(empty.columns) == ["idx", "sentence", "gold", "pvi_base", "pvi_comet", "bits_lost"]
    sts = frame([1], [2.5], sentence1=["a"], sentence2=["b"], pvi=[np.nan])
    assert list(compare.bits_lost("stsb", sts, sts, ("x", "y")).columns) == [
        "idx", "sentence1", "sentence2", "gold", "pvi_x", "pvi_y", "bits_lost"]
    assert compare.bits_lost("stsb", sts, sts, ("x", "y")).empty


def test_a_collapsed_side_is_named():
    assert compare.collapsed_sides(("a", "b"), (0, 2)) == ["b"]
    assert compare.collapse_flag(("a", "b"), (1, 3)) == (
        "collapsed heads: a, b; the test compares class biases, not models")
    assert compare.collapse_flag(("a", "b"), (0, 0)) == ""


def test_the_built_in_slices():
    texts = ["I did not go", "She went home yesterday to see her old friends", "one", "Nobody can't sing",
             "The cat sat on the mat and then it slept for a long long time in the sun"]
    assert compare.slice_masks(["a=b", "ab"], ["eq=a=b"])["eq"].tolist() == [True, False]  # '=' in the regex
    masks = compare.slice_masks(texts, ["q=^[A-Z]", "sun=sun$"])
    assert list(masks) == ["length 1-5", "length 6-10", "length 11-20", "length 21+", "negation", "past tense", "q",
                           "sun"]
    assert masks["length 1-5"].tolist() == [True, False, True, True, False]
    assert masks["length 6-10"].tolist() == [False, True, False, False, False]  # 9 words
    assert masks["length 11-20"].tolist() == [False, False, False, False, True]  # 17 words
    assert not masks["length 21+"].any()
    assert masks["negation"].tolist() == [True, False, False, True, False]
    assert masks["q"].tolist() == [True, True, False, True, True] and masks["sun"].tolist() == [False] * 4 + [True]
    for bad, said in (("noequals", "--slice 'noequals': write it as name=REGEX, e.g. --slice 'question=\\?$'"),
                      ("=x", "--slice '=x': write it as name=REGEX, e.g. --slice 'question=\\?$'"),
                      ("n=(", "--slice 'n=(': bad regex (missing ), unterminated subpattern at position 0)")):
        with pytest.raises(UserError) as refused:
            compare.slice_masks(texts, [bad])
        assert str(refused.value) == said


def slice_frame(gold, seeds, texts, collapsed=0):
    out = pd.DataFrame({"label": gold, "prediction": seeds[0], "sentence": texts, "probs": [[0.5, 0.5]] * len(gold)},
                       index=pd.Index(range(len(gold)), name="idx"))
    out.attrs.update(per_seed=np.stack(seeds), collapsed=collapsed)
    return out


def test_the_slice_table_column_by_column():
    # 24 texts: 12 of 5 words (length 1-5, negated) and 12 of 6 words (length 6-10); no past tense
    texts = ["this is not a pen"] * 12 + ["a fine day it is today"] * 12
    gold = np.array([1, 0] * 12)
    a = gold.copy()
    b = gold.copy()
    b[:12] = 1 - b[:12]  # B wrong on every negated text
    table = compare.slices("sst2", slice_frame(gold, [a, a], texts), slice_frame(gold, [b], texts, collapsed=1),
                           ("A", "B"), user_slices=["pen=pen$"], min_size=12, n_resamples=200)
    assert list(table.columns) == ["slice", "n", "score_A", "score_B", "difference", "ci_low", "ci_high", "ci_level",
                                   "p", "p_holm", "significant", "flag", "note"]
    rows = table.set_index("slice")
    assert rows.loc["length 1-5", "n"] == 12 and rows.loc["length 6-10", "n"] == 12  # 5 and 6 words: the edges
    # 4 slices of 12 or more (length 1-5, length 6-10, negation, pen): Holm over 4, resamples grown for them
    tested = rows[rows["note"] == ""]
    assert sorted(tested.index) == ["length 1-5", "length 6-10", "negation", "pen"]
    assert (tested["score_A"] == 1.0).all() and tested.loc["negation", "score_B"] == 0.0
    assert tested.loc["length 6-10", "difference"] == 0.0 and tested.loc["negation", "difference"] == 1.0
    from frozen_glue.measures import stats

    assert np.allclose(table["p_holm"], stats.holm(table["p"]), equal_nan=True)
    rejected, levels = stats.holm_levels(table["p"], 0.05)
    assert np.allclose(table["ci_level"], 1 - levels, equal_nan=True) and table["significant"].tolist() == list(rejected)
    negation = rows.loc["negation"]
    assert negation["significant"] and negation["ci_low"] > 0 and negation["ci_high"] == 1.0
    # length 1-5, negation and pen are the same rows: Holm decides them at 0.05 / 4, 0.05 / 3 and 0.05 / 2
    assert sorted(rows.loc[["length 1-5", "negation", "pen"], "ci_level"]) == pytest.approx(
        [1 - 0.05 / 2, 1 - 0.05 / 3, 1 - 0.05 / 4])
    flat = rows.loc["length 6-10"]
    assert not flat["significant"] and flat["ci_low"] == flat["ci_high"] == 0.0
    few = rows.loc["past tense"]
    assert few["n"] == 0 and few["note"] == "fewer than 12 examples" and not few["significant"]
    assert np.isnan(few["p"]) and np.isnan(few["ci_low"]) and np.isnan(few["p_holm"])
    assert (table["flag"] == "collapsed heads: B; the test compares class biases, not models").all()
    assert table["significant"].tolist() == sorted(table["significant"].tolist(), reverse=True)
    order = table[table["significant"]]["p_holm"].tolist()
    assert order == sorted(order) and table["slice"].iloc[-1] in ("length 11-20", "length 21+", "past tense")
    assert table.index.tolist() == list(range(len(table)))


def test_one_pair_on_one_split_result_by_result():
    from frozen_glue.measures import stats

    texts = [f"t{i}" for i in range(8)]
    gold = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    a1 = np.array([1, 1, 1, 1, 0, 0, 0, 1])  # a's seeds
    a2 = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    b1 = np.array([1, 0, 0, 1, 0, 1, 0, 0])  # b: one seed
    a, b = slice_frame(gold, [a1, a2], texts, collapsed=2), slice_frame(gold, [b1], texts)
    a["prediction"], a["probs"] = a1, [[0.1, 0.9]] * 8
    b.attrs["ties"] = 3
    b = b.iloc[::-1]  # another row order: joined on idx
    b.attrs.update(per_seed=np.stack([b1[::-1]]), collapsed=0, ties=3)
    result, table = compare.disagreement("sst2", a, b, ("A", "B"), n_resamples=300)
    diff, dist = stats.hierarchical_distribution("accuracy", np.stack([a1, a2]), np.stack([b1]), gold,
                                                 n_resamples=300)
    assert diff == pytest.approx((7 / 8 + 7 / 8) / 2 - 5 / 8)
    expected = {"task": "sst2", "model_a": "A", "model_b": "B", "n": 8, "seeds_a": 2, "seeds_b": 1,
                "metric": "accuracy", "difference": diff, "p": stats.bootstrap_p(dist), "resamples": len(dist),
                "collapsed_a": 2, "collapsed_b": 0, "vote_ties_a": 0, "vote_ties_b": 3,
                # a1 against b1: both right on 0, 3, 4, 6; only A on 1, 2, 5; only B on 7
                "both_right": 4, "only_a_right": 3, "only_b_right": 1, "both_wrong": 0, "disagree": 4,
                "a_better": 3, "b_better": 1, "test": "exact McNemar", "mcnemar_p": stats.mcnemar_exact(3, 1),
                "test_p": stats.mcnemar_exact(3, 1),
                "test_flag": "collapsed heads: A; the test compares class biases, not models"}
    low, high = stats.bootstrap_interval(dist, 0.05)
    assert {k: result[k] for k in expected} == expected and (result["ci_low"], result["ci_high"]) == (low, high)
    assert np.array_equal(result["distribution"], dist) and set(result) == set(expected) | {
        "ci_low", "ci_high", "distribution"}
    assert list(table.columns) == ["idx", "sentence", "gold", "pred_A", "pred_B", "probs_A", "probs_B"]
    assert table["idx"].tolist() == [1, 2, 5, 7] and table["pred_B"].tolist() == [0, 0, 1, 0]
    assert table["probs_A"].tolist() == ["[0.1, 0.9]"] * 4 and table["probs_B"].tolist() == ["[0.5, 0.5]"] * 4


def test_sts_b_pairs_are_compared_by_closeness():
    from frozen_glue.measures import stats

    gold = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 2.0])
    pa = np.array([0.5, 1.0, 2.5, 3.0, 4.0, 2.0, 1.5])
    pb = np.array([0.0, 2.5, 2.0, 3.2, 4.1, 5.0, 2.5])  # the last: a tie, exactly one point apart
    texts = [f"t{i}" for i in range(7)]

    def frame(p):
        out = pd.DataFrame({"label": gold, "prediction": p, "sentence1": texts, "sentence2": texts},
                           index=pd.Index(range(7), name="idx"))
        out.attrs["per_seed"] = p[None]
        return out

    result, table = compare.disagreement("stsb", frame(pa), frame(pb), ("A", "B"), n_resamples=200)
    assert (result["a_better"], result["b_better"]) == (3, 3)  # closer: A on 1, 3, 4; B on 0, 2, 5
    assert result["disagree"] == 2 and table["idx"].tolist() == [1, 5]  # more than one point apart: 1.5 and 3.0
    assert result["test"] == "Wilcoxon signed-rank, |error|" and result["metric"] == "pearson"
    assert result["test_p"] == stats.wilcoxon_p(np.abs(pa - gold), np.abs(pb - gold)) and result["test_flag"] == ""
    assert list(table.columns) == ["idx", "sentence1", "sentence2", "gold", "pred_A", "pred_B"]


def test_slices_by_default_test_ten_examples_with_resamples_grown_for_the_family():
    from frozen_glue.measures import stats

    # N: 10 negated texts (5 words), B wrong on all; F: 12 texts of 6 words, B wrong on 2; A always right
    texts = ["this is not a pen"] * 10 + ["a fine day it is today"] * 12
    gold = np.array([1, 0] * 11)
    b = gold.copy()
    b[:10] = 1 - b[:10]
    b[[10, 13]] = 1 - b[[10, 13]]
    a_frame = slice_frame(gold, [gold, gold], texts, collapsed=2)
    a_frame.attrs.pop("per_seed")  # one seed's predictions only: read as the one seed
    b_frame = slice_frame(gold, [b], texts)
    del b_frame.attrs["collapsed"]
    table = compare.slices("sst2", a_frame, b_frame, ("A", "B"), alpha=0.1).set_index("slice")
    tested = table[table["note"] == ""]
    assert sorted(tested.index) == ["length 1-5", "length 6-10", "negation"]  # 10 rows make a slice; 0 do not
    r = stats.resamples_for(3, 1000, 0.1)  # 599: the default 1000 already leaves 10 in each tail
    assert r == 1000 and tested.loc["negation", "p"] == pytest.approx(2 / (r + 1))  # never 0: 2 / (R + 1)
    fine = tested.loc["length 6-10"]
    assert fine["difference"] == pytest.approx(2 / 12) and fine["ci_low"] < fine["ci_high"]
    rejected, levels = stats.holm_levels(table["p"], 0.1)  # alpha reaches Holm's levels
    assert np.allclose(table["ci_level"], 1 - levels, equal_nan=True)
    assert (table["flag"] == "collapsed heads: A; the test compares class biases, not models").all()
    unflagged = compare.slices("sst2", b_frame, b_frame, ("X", "Y"), n_resamples=50)
    assert (unflagged["flag"] == "").all()  # no `collapsed` recorded: none
    with pytest.raises(UserError, match="^the prediction files of A and B cover different examples"):
        compare.slices("sst2", a_frame, b_frame.iloc[1:], ("A", "B"), n_resamples=50)


def test_the_primary_test_defaults_and_what_each_side_records():
    texts = [f"t{i}" for i in range(8)]
    gold = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    a, b = slice_frame(gold, [gold], texts, collapsed=2), slice_frame(gold, [1 - gold], texts)
    a.attrs["ties"] = 1
    del b.attrs["collapsed"]
    result, _ = compare.disagreement("sst2", a, b, ("A", "B"))
    assert result["resamples"] == 2000 and (result["collapsed_a"], result["collapsed_b"]) == (2, 0)
    assert (result["vote_ties_a"], result["vote_ties_b"]) == (1, 0)
    result, _ = compare.disagreement("sst2", b, a, ("B", "A"), n_resamples=100)
    assert (result["collapsed_a"], result["collapsed_b"], result["vote_ties_a"], result["vote_ties_b"]) == (0, 2, 0, 1)
    with pytest.raises(UserError, match="^the prediction files of X and Y cover different"):
        compare.disagreement("sst2", a, b.iloc[1:], ("X", "Y"))
    with pytest.raises(UserError, match="^the prediction files of X and Y cover different"):
        compare.bits_lost("sst2", a, b.iloc[1:], ("X", "Y"))


def test_many_ties_in_bits_lost_keep_idx_order():
    n = 40
    base = frame(list(range(n)), [1] * n, sentence=[str(i) for i in range(n)], pvi=[float(i % 3) for i in range(n)])
    derived = frame(list(range(n)), [1] * n, sentence=[str(i) for i in range(n)], pvi=[0.0] * n)
    table = compare.bits_lost("sst2", base, derived, ("b", "d"))
    expected = [i for lost in (2, 1, 0) for i in range(n) if i % 3 == lost]
    assert table["idx"].tolist() == expected


PAST = {"I read books every day": False, "She went home": True, "He walked home": True,
        "The door is closed": False, "The door was quickly closed": True, "They quickly closed the door": True,
        "The newly closed shop": False, "Used cars are cheap": False, "You should go": False,
        "You ought to go": False, "She wove a basket": True, "They had fun": True, "I have walked": False,
        "Nothing here": False, "He put it down": False, "They cut it and went": True,
        # a word that is skipped must not end the search: each of these has a past form after it
        "He could stay but she went": True, "I read it and went home": True, "The door is closed and she went": True,
        "Used cars went fast": True, "I have ate it": True, "The door is quickly closed": False,
        "Used cars sell": False, "Finished early": True,
        "I dare you": False, "Beware the dog": False}  # verbs whose tables list no past form


def test_the_past_tense_rule_sentence_by_sentence(monkeypatch):
    monkeypatch.setattr(compare, "_TAGGER", [None])  # the rule, as where no spaCy model is installed
    assert compare.past_tense_method() == compare.PAST_TENSE_RULE
    assert {text: compare.is_past_tense(text) for text in PAST} == PAST


def test_the_past_tense_by_spacys_tags(monkeypatch):
    from types import SimpleNamespace

    tags = {"went": "VBD", "were": "VBD", "Was": "NN", "home": "NN", "she": "PRP", "They": "PRP"}

    def tagger(text):
        return [SimpleNamespace(tag_=tags.get(w, "VB"), lower_=w.lower()) for w in text.split()]

    monkeypatch.setattr(compare, "_TAGGER", [])
    monkeypatch.setattr(compare, "_spacy_tagger", lambda: tagger)
    assert compare.past_tense_method() == "spaCy en_core_web_sm tagger (VBD, or a past auxiliary)"
    assert compare._TAGGER == [tagger]  # loaded once
    assert compare.is_past_tense("she went home")  # a VBD tag
    assert compare.is_past_tense("Was home")  # a past auxiliary, whatever its tag
    assert not compare.is_past_tense("They walk home")


def family_row(p, dist, collapsed=(0, 0), **over):
    return {"task": "sst2", "model_a": "A", "model_b": "B", "metric": "accuracy", "difference": float(np.median(dist)),
            "p": p, "distribution": np.asarray(dist, dtype=float), "collapsed_a": collapsed[0],
            "collapsed_b": collapsed[1], **over}


def test_verdicts_word_by_word():
    from frozen_glue.measures import stats

    up = np.linspace(0.01, 0.2, 199)  # every resample above 0: p = 2 / 200
    down = -up
    flat = np.linspace(-0.1, 0.1, 199)
    rows = pd.DataFrame([family_row(stats.bootstrap_p(up), up, (1, 2)), family_row(stats.bootstrap_p(down), down),
                         family_row(stats.bootstrap_p(flat), flat, (0, 3)), family_row(np.nan, [])])
    out = compare.verdicts(rows, alpha=0.05)
    assert out["verdict"].tolist() == ["A better (collapsed heads: A, B)", "B better", "no evidence of a difference "
                                       "(collapsed heads: B)", compare.NOT_TESTED]
    assert np.isnan(out.loc[3, "ci_low"]) and np.isnan(out.loc[3, "ci_high"]) and "distribution" not in out
    rejected, levels = stats.holm_levels(rows["p"], 0.05)
    assert out["ci_level"].tolist()[:3] == pytest.approx((1 - levels)[:3].tolist())
    assert (out.loc[0, "ci_low"], out.loc[0, "ci_high"]) == stats.bootstrap_interval(up, levels[0])
    wide = compare.verdicts(rows, alpha=0.5)  # alpha reaches the levels: the flat pair is still no evidence
    assert wide["ci_level"].tolist()[:3] == pytest.approx((1 - stats.holm_levels(rows["p"], 0.5)[1])[:3].tolist())
    missing = compare.verdicts(pd.DataFrame([{k: v for k, v in family_row(stats.bootstrap_p(up), up).items()
                                              if not k.startswith("collapsed")}]))
    assert missing["verdict"].tolist() == ["A better"]


def test_an_interval_touching_zero_is_no_evidence():
    zero_low = np.concatenate([np.zeros(10), np.linspace(0.01, 0.2, 189)])  # low end exactly 0: not above 0
    from frozen_glue.measures import stats

    p = stats.bootstrap_p(zero_low)
    out = compare.verdicts(pd.DataFrame([family_row(p, zero_low), family_row(p, -zero_low)]), alpha=p / 2)
    assert out["verdict"].tolist() == ["no evidence of a difference"] * 2
    assert out.loc[0, "ci_low"] == 0.0 and out.loc[1, "ci_high"] == 0.0


def test_a_verdict_that_contradicts_its_interval_is_never_printed(monkeypatch):
    monkeypatch.setattr(compare, "holm_levels", lambda p, alpha: (np.array([True]), np.array([0.05])))
    flat = np.linspace(-0.1, 0.1, 199)
    with pytest.raises(AssertionError) as stopped:
        compare.verdicts(pd.DataFrame([family_row(0.9, flat, task="rte")]))
    low, high = [float(x) for x in np.asarray(compare.bootstrap_interval(flat, 0.05))]
    assert str(stopped.value) == f"verdict and interval disagree for rte A vs B: p 0.9, interval [{low}, {high}]"


def test_significant_slices_come_first_smallest_corrected_p_first():
    texts = ["yy"] * 20 + ["xx"] * 20
    gold = np.array([1, 0] * 20)
    b = gold.copy()
    b[:2] = 1 - b[:2]  # y: B wrong on 2 of 20 (p about 0.2)
    b[20:] = 1 - b[20:]  # x: B wrong on all 20 (p = 2 / (R + 1))
    table = compare.slices("sst2", slice_frame(gold, [gold], texts), slice_frame(gold, [b], texts), ("A", "B"),
                           user_slices=["y=^yy$", "x=^xx$"], n_resamples=400, alpha=0.5)
    significant = table[table["significant"]]
    assert significant["slice"].tolist()[-1] == "y"  # listed after x although its mask comes first
    order = significant["p_holm"].tolist()
    assert order == sorted(order) and len(set(order)) > 1

"""Rules of the information measures, stated with answers written out here (mutation testing, docs/mutants.md):
Voita & Titov's online code (blocks, uniform first block, bits), the word-type control task of Hewitt & Liang,
pointwise V-information of Ethayarajh et al. Each input is chosen so that a near-miss formula gives another number."""

import hashlib
import json
import math
import unittest.mock
from types import SimpleNamespace

import numpy as np
import pytest

from frozen_glue.core.tasks import get_task
from frozen_glue.measures import information as info
from frozen_glue.science import information_probes as probes  # at the top: a mutant's fork has it imported


def test_the_transmission_order_is_one_fixed_permutation():
    assert info.mdl_order(6).tolist() == np.random.default_rng(0).permutation(6).tolist()
    assert info.mdl_order(6, seed=1).tolist() == np.random.default_rng(1).permutation(6).tolist()
    assert info.mdl_order(6).tolist() != info.mdl_order(6, seed=1).tolist()


def test_block_ends_are_voita_and_titovs_percentages_of_the_rows():
    # 10,000 rows: 0.1 % = 10, 0.2 % = 20, ... 6.25 % = 625, 12.5 % = 1250 ...
    assert info.block_ends(10_000) == [10, 20, 40, 80, 160, 320, 625, 1250, 2500, 5000, 10_000]
    assert info.block_ends(100) == [1, 3, 6, 12, 25, 50, 100]  # int() floors: 0.1 % and 0.2 % of 100 rows: 1 row
    assert info.block_ends(5, percents=(1, 60)) == [1, 3, 5]  # the first block has a row; the end is always there
    assert info.block_ends(4, percents=(50, 200)) == [2, 4]  # never past the rows


def test_codelengths_in_bits():
    assert info.uniform_codelength(10, 4) == 20.0 and info.uniform_codelength(3, 3) == pytest.approx(3 * 1.5849625)
    logits = [[0.0, 0.0], [math.log(3), 0.0], [0.0, math.log(7)]]  # p(gold) = 1/2, 3/4 for class 0, 1/8 for class 0
    assert info.codelength_bits(logits, [1, 0, 0]) == pytest.approx(1 + math.log2(4 / 3) + 3)
    out = info.online_codelength([2, 4, 8], 4, [3.0, 5.0])  # first block: 2 rows x 2 bits
    assert out == {"codelength_kbits": pytest.approx(0.012), "uniform_kbits": pytest.approx(0.016),
                   "compression": pytest.approx(16 / 12), "block_kbits": pytest.approx([0.004, 0.003, 0.005])}
    assert info.online_codelength([1, 2], 1, [0.0])["compression"] is None  # nothing to send: no ratio
    with pytest.raises(ValueError, match=r"^2 blocks after the first, 1 codelengths$"):
        info.online_codelength([1, 2, 4], 2, [1.0])


def test_word_types_and_their_fixed_values():
    assert info.word_types("The cat's 2 CATS, the cat!") == {"the", "cat's", "2", "cats", "cat"}
    assert info.word_types(None) == {"none"}
    by_hand = int(hashlib.sha256(b"cat").hexdigest()[:16], 16) / 2 ** 64
    assert info.type_value("cat") == by_hand and 0 <= by_hand < 1
    assert info.control_score("cat cat dog") == pytest.approx((info.type_value("cat") + info.type_value("dog")) / 2)
    assert info.control_score("!!") == 0.5


def test_length_buckets_count_word_types():
    assert [info.length_bucket(t) for t in ("", "a", "a b", "a b c d e", "a a a a a")] == [1, 1, 2, 4, 1]
    assert info.length_bucket(" ".join(f"w{i}" for i in range(41))) == 10
    assert info.length_bucket(" ".join(f"w{i}" for i in range(40))) == 9


def test_control_labels_are_the_train_quantile_at_the_scores_rank():
    train = [f"t{i}" for i in range(4)]  # one type each: buckets too small, ranked among all train texts
    scores = sorted(info.control_score(t) for t in train)
    labels = [0, 0, 1, 1]
    # a dev text with a train text's own type sits at that text's rank: ranks 1..4 of 4 -> quantiles .25 .. 1
    ranks = [sorted(scores).index(info.control_score(t)) + 1 for t in train]
    expected = [0 if r <= 2 else 1 for r in ranks]
    assert info.control_labels(train, train, labels, regression=False).tolist() == expected
    scores_out = info.control_labels(train, train, [0.5, 1.0, 4.0, 2.0], regression=True)
    assert sorted(scores_out.tolist()) == [0.5, 1.0, 2.0, 4.0] and scores_out.dtype == float
    low = min(train, key=info.control_score)
    assert info.control_labels([low], train, [0.5, 1.0, 4.0, 2.0], regression=True).tolist() == [0.5]


def test_control_labels_rank_within_a_length_bucket_of_enough_texts():
    short = [f"s{i}" for i in range(20)]  # bucket 1, 20 texts: ranked among themselves
    long = [f"a{i} b{i} c{i} d{i} e{i} f{i}" for i in range(3)]  # 6 types: bucket 5, 3 texts: among all
    train, labels = short + long, [0] * 10 + [1] * 10 + [1, 1, 1]
    lowest_short = min(short, key=info.control_score)
    # rank 1 of the 20 short texts: quantile 1/20 of the labels -> 0
    assert info.control_labels([lowest_short], train, labels, regression=False).tolist() == [0]
    ranked_all = sorted(info.control_score(t) for t in train)
    for text in long:
        u = (ranked_all.index(info.control_score(text)) + 1) / 23
        want = np.quantile(np.asarray(labels, dtype=float), u, method="inverted_cdf")
        assert info.control_labels([text], train, labels, regression=False).tolist() == [int(want)]


def test_pointwise_v_information_in_bits():
    prior = info.label_prior([0, 0, 0, 1], 3)  # 3/4, 1/4 and a tiny mass for the unseen class 2
    assert prior[:2] == pytest.approx([0.75, 0.25]) and 0 < prior[2] < 1e-11 and prior.sum() == pytest.approx(1)
    logits = [[math.log(3), 0.0, -50.0], [0.0, 0.0, -50.0]]  # p(0) = 3/4 and p(1) = 1/2 (to 1e-21)
    assert info.pvi_bits(logits, [0, 1], prior) == pytest.approx([0.0, 1.0])  # log2(.75/.75), log2(.5/.25)


def test_the_probes_read_texts_and_scores_as_the_measures_need_them(tmp_path):
    rte = get_task("rte")
    assert probes.texts(rte, {"sentence1": ["a", "b"], "sentence2": ["c", 5]}) == ["a\nc", "b\n5"]
    assert probes.main_score(get_task("sst2"), [[0.0, 1.0], [2.0, 1.0], [0.0, 3.0]], [1, 1, 1]) == pytest.approx(2 / 3)
    assert probes.main_score(get_task("stsb"), [[1.0], [2.0], [3.0]], [1.0, 2.0, 4.0]) == pytest.approx(
        np.corrcoef([1, 2, 3], [1, 2, 4])[0, 1])
    assert probes.main_score(get_task("stsb"), [[1.0], [1.0], [1.0]], [1.0, 2.0, 4.0]) is None  # undefined
    assert [probes.holdout_rows(t) for t in (1, 2, 3, 10, 40, 100, 199, 300, 1000)] == [0, 1, 1, 5, 20, 20, 20, 30, 100]
    assert probes.MDL_PROTOCOL == {"holdout_fraction": 0.1, "min_holdout": 20, "optimizer": "adam",
                                   "learning_rate": 1e-2, "batch_size": 64, "max_epochs": 100, "patience": 10,
                                   "standardised": True, "units": "bits (kbits = 1000 bits)"}
    study = SimpleNamespace(probe_mdl=False, probe_control=True, probe_convex=True)
    prep = SimpleNamespace(study_args=study, args=SimpleNamespace(do_eval=False), folders={1: "a", 2: "b"})
    calls = []
    fake = [probes.Measure(m.file, m.wanted, lambda *args, f=m.file: calls.append(f) or {1: f, 2: f + "!"})
            for m in probes.MEASURES]
    with unittest.mock.patch.object(probes, "MEASURES", tuple(fake)):
        assert probes.measure(prep, [0], {}, {}) == {1: {"convex.json": "convex.json"},
                                                     2: {"convex.json": "convex.json!"}}
        prep.args.do_eval, study.probe_mdl = True, True
        assert list(probes.measure(prep, [0], {}, {})[1]) == ["mdl.json", "selectivity.json", "convex.json"]
        study.probe_mdl = study.probe_control = study.probe_convex = False
        assert probes.measure(prep, [0], {}, {}) == {1: {}, 2: {}}
    probes.write(tmp_path, {"mdl.json": {"a": float("nan")}, "convex.json": {"b": 1}})
    assert json.loads((tmp_path / "mdl.json").read_text()) == {"a": None}
    assert json.loads((tmp_path / "convex.json").read_text()) == {"b": 1}


def test_bits_are_computed_in_float64_from_half_precision_logits_and_float_labels():
    logits16 = np.array([[0.0, 7.3], [2.1, -1.7]], dtype=np.float16)  # a half-precision head's outputs
    as64 = logits16.astype(np.float64)
    assert info.codelength_bits(logits16, [0, 1]) == info.codelength_bits(as64, [0, 1])  # bit for bit
    assert info.codelength_bits(as64, [0.0, 1.0]) == info.codelength_bits(as64, [0, 1])  # labels read from JSON
    prior = info.label_prior([0.0, 1.0, 1.0], 2)
    assert prior == pytest.approx([1 / 3, 2 / 3])
    assert (info.pvi_bits(logits16, [0.0, 1.0], prior) == info.pvi_bits(as64, [0, 1], prior)).all()


def test_pvi_normalises_each_row_not_each_column():
    prior = np.array([0.75, 0.25, 1e-12])
    logits = [[math.log(3), 1.0, -50.0], [0.0, 0.0, -50.0]]
    p0 = 3 / (3 + math.e + math.exp(-50))  # row 0's p(class 0)
    assert info.pvi_bits(logits, [0, 1], prior) == pytest.approx([math.log2(p0 / 0.75), math.log2(0.5 / 0.25)])


def test_control_labels_of_a_classification_task_are_integers_and_an_unseparated_top_is_none():
    train = [f"t{i}" for i in range(4)]
    labels = info.control_labels(train, train, [0, 0, 1, 1], regression=False)
    assert labels.dtype.kind == "i"
    n5 = [5, 5, 5]
    assert info.separation_layer([0, 1, 2], [0.5] * 3, [0.01] * 3, n5, [0.5] * 3, [0.01] * 3, n5) is None


def test_a_one_bit_online_code_has_a_compression():
    assert info.online_codelength([1, 2], 2, [0.0])["compression"] == 2.0  # 2 uniform bits over 1 sent bit


def test_a_bucket_of_enough_texts_ranks_within_itself_and_a_new_bucket_among_all():
    # 3 long texts (6 types each) whose types have the lowest values of w0..w999: below every short text
    words = sorted((f"w{i}" for i in range(1000)), key=info.type_value)
    long = [" ".join(words[6 * j:6 * j + 6]) for j in range(3)]
    short = [f"s{i}" for i in range(20)]  # bucket 1: 20 texts, enough to rank within
    train = long + short
    labels = [0, 0] + [1] * 21  # the 5 % quantile is 0, the 17 % quantile 1
    lowest_short = min(short, key=info.control_score)
    # within its bucket: rank 1 of 20, u = 0.05 -> label 0; ranked among all 23 it would be rank 4, u = 0.17 -> 1
    assert info.control_labels([lowest_short], train, labels, regression=False).tolist() == [0]
    # a long text: its bucket has 3 train texts, too few, so it ranks among all 23; labels one 0 and 22 ones
    few = [0] + [1] * 22
    assert info.control_labels([long[0]], train, few, regression=False).tolist() == [0]  # rank 1 of 23 (1 of 3: 1)
    assert info.control_labels([long[1]], train, few, regression=False).tolist() == [1]  # rank 2 of 23 (0 of 20: 0)
    # a dev text of 10 types: a bucket train does not have, ranked among all 23 train texts
    ten = " ".join(f"x{i}" for i in range(10))
    u = (sum(info.control_score(t) <= info.control_score(ten) for t in train)) / 23
    want = int(np.quantile(np.asarray(labels, dtype=float), u, method="inverted_cdf"))
    assert info.control_labels([ten], train, labels, regression=False).tolist() == [want]

"""Rules the mutation run found unstated (issue 32), with hand-computed answers: a run's identity in words, the
run layout, the slice tagger, the expected and separation layers."""

import pytest


# ------------------------------------------------------------------------------------------------- identity


def test_protocol_diff_names_every_argument_that_differs_including_ones_only_one_side_has():
    from frozen_glue.core.identity import protocol_diff

    assert protocol_diff(None, {"learning_rate": 0.01}) == "made without a recorded protocol (an older frozen-GLUE)"
    old = {"learning_rate": 0.02, "num_train_epochs": 2.0, "pooling": "auto"}
    new = {"learning_rate": 0.05, "num_train_epochs": 2.0, "pooling": "auto", "probe_mdl": True}
    assert protocol_diff(old, new) == "learning_rate 0.02 -> 0.05, probe_mdl None -> True"
    assert protocol_diff(new, old) == "learning_rate 0.05 -> 0.02, probe_mdl True -> None"
    assert protocol_diff(old, dict(old)) == "no argument differs"


def test_difference_names_the_protocol_the_weights_and_the_data_splits_that_differ():
    """Two configs whose protocol, weights and two data splits differ (one split only the new run has): the words
    name each, in that order, and the splits by name."""
    from frozen_glue.core.identity import difference

    old = {"protocol_hash": "p1", "protocol": {"learning_rate": 0.02}, "model_fingerprint": "m1",
           "tokenizer_fingerprint": "t", "data_fingerprints": {"train": "a", "validation": "b"}}
    new = {"protocol_hash": "p2", "protocol": {"learning_rate": 0.05}, "model_fingerprint": "m2",
           "tokenizer_fingerprint": "t", "data_fingerprints": {"train": "a", "validation": "c", "test": "d"}}
    assert difference(old, new) == ("learning_rate 0.02 -> 0.05, the model's weights differ, "
                                    "the data (test, validation) differ")
    assert difference(old, dict(old)) == ""
    assert difference({**old, "data_fingerprints": None}, old) == "the data differ"  # an older run: no splits


# --------------------------------------------------------------------------------------------------- layout


def test_run_dir_is_runs_alias_task_seed():
    from pathlib import Path

    from frozen_glue.core import layout

    assert layout.run_dir("runs", "comet", "cola", 3) == Path("runs") / "comet" / "cola" / "seed3"


# ------------------------------------------------------------------------------------------------- compare


def test_the_slice_tagger_is_spacys_small_english_model_without_parser_ner_or_lemmatizer(monkeypatch):
    """With spaCy installed, the slices tag with en_core_web_sm and only its tagger (parser, NER and lemmatizer
    off: they cost time and decide nothing here); without spaCy or the model, None (the rule-based tagger)."""
    import sys
    import types

    from frozen_glue.report import compare

    calls = []
    monkeypatch.setitem(sys.modules, "spacy", types.SimpleNamespace(load=lambda *a, **k: calls.append((a, k)) or "nlp"))
    assert compare._spacy_tagger() == "nlp"
    assert calls == [(("en_core_web_sm",), {"disable": ["parser", "ner", "lemmatizer"]})]

    def missing(*a, **k):
        raise OSError("[E050] Can't find model 'en_core_web_sm'")

    monkeypatch.setitem(sys.modules, "spacy", types.SimpleNamespace(load=missing))
    assert compare._spacy_tagger() is None


# ---------------------------------------------------------------------------------------------- information


def test_expected_layer_sorts_layers_numerically_and_reads_lower_is_better_curves():
    """Tenney's E[l] over the running best. Layers given as strings out of order, "10" before "2" (a sort of the
    strings would put 10 first): scores 0.5, 0.6, 0.9 at layers 0, 2, 10 give gains 0.1 at 2 and 0.3 at 10:
    (2 * 0.1 + 10 * 0.3) / 0.4 = 8. A loss curve (lower is better) 0.9, 0.8, 0.5 is the same curve negated: 8 too
    (read as higher-is-better it has no gain: None)."""
    from frozen_glue.measures.information import expected_layer

    assert expected_layer(["10", "0", "2"], [0.9, 0.5, 0.6]) == pytest.approx(8.0)
    assert expected_layer([10, 0, 2], [0.5, 0.9, 0.8], higher_is_better=False) == pytest.approx(8.0)
    assert expected_layer([10, 0, 2], [0.5, 0.9, 0.8]) is None


def test_expected_layer_skips_a_layer_without_a_score_and_reads_no_layer_as_no_gain():
    """layer_results.json writes a NaN score as null: read back, None. Layers 0, 1, 2 scoring 0.5, None, 0.7: the
    gain 0.2 lands on layer 2 (E = 2). No layer at all: no gain, None."""
    from frozen_glue.measures.information import expected_layer

    assert expected_layer([0, 1, 2], [0.5, None, 0.7]) == pytest.approx(2.0)
    assert expected_layer([], []) is None


def test_separation_layer_by_welchs_test_with_the_top_layers_sign_down_to_the_lowest():
    """Three layers, 5 seeds each side, means 0.10 apart with std 0.01 (Welch p ~ 1e-7) everywhere: separated from
    layer 0. Flip layer 1's sign: the gap at layer 1 is not the top's, so separation starts at layer 2 (the
    layer below the top decides nothing by its own sign). Welch, not Student: at layer 0, 2 seeds with std 0.08
    beside 10 with std 0.001 (Student's pooled p 0.006, Welch's 0.35): not separated there. A missing std (one
    seed: null in JSON) never separates, and nothing warns."""
    import warnings

    from scipy.stats import ttest_ind_from_stats

    from frozen_glue.measures.information import separation_layer

    n5 = [5, 5, 5]
    assert separation_layer([0, 1, 2], [0.6, 0.6, 0.6], [0.01] * 3, n5, [0.5] * 3, [0.01] * 3, n5) == 0
    assert separation_layer([0, 1, 2], [0.6, 0.4, 0.6], [0.01] * 3, n5, [0.5] * 3, [0.01] * 3, n5) == 2
    assert separation_layer([2, 0, 1], [0.6, 0.6, 0.4], [0.01] * 3, n5, [0.5] * 3, [0.01] * 3, n5) == 2  # unsorted
    student = ttest_ind_from_stats(0.6, 0.08, 2, 0.5, 0.001, 10, equal_var=True).pvalue
    welch = ttest_ind_from_stats(0.6, 0.08, 2, 0.5, 0.001, 10, equal_var=False).pvalue
    assert student < 0.05 < welch
    assert separation_layer([0, 1], [0.6, 0.6], [0.08, 0.01], [2, 5], [0.5, 0.5], [0.001, 0.01], [10, 5]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert separation_layer([0, 1, 2], [0.6, 0.6, 0.6], [None, 0.1, 0.01], [1, 1, 5], [0.5, 0.5, 0.5],
                                [0.0, 0.0, 0.01], [5, 1, 5]) == 2


def test_relation_of_two_runs_names_controls_settings_poolings_and_identical_weights():
    from frozen_glue.core.errors import UserError
    from frozen_glue.core.identity import IDENTICAL, relation, relation_of

    base = {"learning_rate": 0.01, "pooling": "auto"}
    assert relation(base, dict(base)) == ""
    assert relation(base, {**base, "random_init": True}) == "control"
    assert relation({**base, "random_init": False}, {**base, "random_init": True, "seed_offset": 1}) == \
        "settings differ: random_init False -> True, seed_offset None -> 1"
    assert relation(None, base) == "settings differ: made without a recorded protocol (an older frozen-GLUE)"
    with pytest.raises(UserError) as e:
        relation(base, {**base, "pooling": "mean"})
    assert str(e.value) == ("one model was probed with --pooling auto, the other with --pooling mean; compare runs "
                            "of the same pooling")
    with pytest.raises(UserError) as e:
        relation({"learning_rate": 0.01}, {"learning_rate": 0.01, "pooling": "mean"})
    assert "--pooling auto, the other with --pooling mean" in str(e.value)
    with pytest.raises(UserError) as e:
        relation(base, base, ("mean", "pooler"))
    assert str(e.value) == ("one model's heads read mean, the other's pooler (config.json: pooling.rule): pass both "
                            "the same --pooling (e.g. --pooling mean) and rerun")
    assert relation(base, base, ("mean", None)) == "" and relation(base, base, ("mean", "mean")) == ""

    def config(model="m1", tokenizer="t1", rule="last_non_pad", **protocol):
        return {"protocol": {**base, **protocol}, "model_fingerprint": model, "tokenizer_fingerprint": tokenizer,
                "pooling": {"rule": rule}}

    assert relation_of(config(), config()) == IDENTICAL
    assert relation_of(config(), config(learning_rate=0.02)) == f"{IDENTICAL}; settings differ: learning_rate 0.01 -> 0.02"
    assert relation_of(config(), config(model="m2")) == "" and relation_of(config(), config(tokenizer="t2")) == ""
    assert relation_of(config(model=None), config(model=None)) == ""  # no fingerprint recorded: not known identical
    assert relation_of(config(model="m2"), config(random_init=True)) == "control"
    with pytest.raises(UserError, match="heads read last_non_pad, the other's mean"):
        relation_of(config(), config(model="m2", rule="mean"))
    assert relation_of(None, None) == ""


def test_an_identity_is_four_recorded_fields_and_its_hash():
    import hashlib

    from frozen_glue.core.identity import identity_hash, of_config

    config = {"protocol_hash": "p", "model_fingerprint": "m", "tokenizer_fingerprint": "t",
              "data_fingerprints": {"train": "d"}, "seed": 3, "protocol": {"x": 1}}
    identity = of_config(config)
    assert identity == {"protocol_hash": "p", "model_fingerprint": "m", "tokenizer_fingerprint": "t",
                        "data_fingerprints": {"train": "d"}}
    assert of_config({}) == dict.fromkeys(identity)
    by_hand = hashlib.sha256(b'{"data_fingerprints": {"train": "d"}, "model_fingerprint": "m", "protocol_hash": "p", '
                             b'"tokenizer_fingerprint": "t"}').hexdigest()[:16]
    assert identity_hash(identity) == by_hand and identity_hash(dict(reversed(identity.items()))) == by_hand


def test_a_source_stamp_is_names_sizes_and_times_of_a_models_files(tmp_path, monkeypatch):
    import hashlib
    import os

    from frozen_glue.core.identity import source_stamp

    model = tmp_path / "model"
    model.mkdir()
    for name, data, when in (("config.json", b"{}", 10**18), ("w.bin", b"abc", 2 * 10**18)):
        (model / name).write_bytes(data)
        os.utime(model / name, ns=(when, when))
    (model / "sub").mkdir()  # a folder inside is not a file of the model
    lines = f"config.json:2:{10**18}\nw.bin:3:{2 * 10**18}\n"
    assert source_stamp(model) == hashlib.sha256(lines.encode()).hexdigest()[:16]
    assert source_stamp(model / "w.bin") == hashlib.sha256(f"w.bin:3:{2 * 10**18}\n".encode()).hexdigest()[:16]
    both = hashlib.sha256(f"{source_stamp(model)} {source_stamp(model / 'w.bin')}".encode()).hexdigest()[:16]
    assert source_stamp(model, model / "w.bin") == both
    assert source_stamp(model, tmp_path / "missing") is None
    # a hub id: the snapshot of the local HF cache that holds its config.json
    snapshot = tmp_path / "hub" / "models--org--name" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_bytes(b"{}")
    os.utime(snapshot / "config.json", ns=(10**18, 10**18))
    (tmp_path / "hub" / "models--org--name" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--name" / "refs" / "main").write_text("abc")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    expected = hashlib.sha256(f"config.json:2:{10**18}\n".encode()).hexdigest()[:16]
    assert source_stamp("org/name") == expected and source_stamp("org/other") is None


def test_two_poolings_are_refused_whichever_side_left_it_at_its_default():
    from frozen_glue.core.errors import UserError
    from frozen_glue.core.identity import relation

    assert relation({"pooling": "mean", "lr": 1}, {"pooling": "mean", "lr": 2}) == "settings differ: lr 1 -> 2"
    for a, b, said in (({"lr": 1}, {"lr": 1, "pooling": "mean"}, ("auto", "mean")),
                       ({"lr": 1, "pooling": "mean"}, {"lr": 1}, ("mean", "auto"))):
        with pytest.raises(UserError) as refused:
            relation(a, b)
        assert str(refused.value) == (f"one model was probed with --pooling {said[0]}, the other with --pooling "
                                      f"{said[1]}; compare runs of the same pooling")


def test_two_protocols_without_a_pooling_both_read_auto():
    from frozen_glue.core.identity import relation

    assert relation({"lr": 1}, {"lr": 2}) == "settings differ: lr 1 -> 2"

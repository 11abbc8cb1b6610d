"""Rules of the pooling rule, stated with answers written out here (mutation testing, docs/mutants.md): which
position each rule reads, how a rule is chosen or refused, which layers are probed, and own_rule's finding on
models whose heads are known (GPT-2: the last non-pad token; BERT: the pooler)."""

from types import SimpleNamespace

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2ForSequenceClassification

from frozen_glue.core.errors import UserError
from frozen_glue.model import pooling


def test_the_position_in_words():
    assert [pooling.pooled_position(r, False) for r in ("last_non_pad", "pooler", "first_token", "mean", "x")] == [
        "the last token of the text", "the first token ([CLS]) through the pooler", "the first token",
        "the mean over the text's tokens", "the model's own choice"]
    assert pooling.pooled_position("last_non_pad", True) == "the appended EOS"


def test_a_sentence_transformers_mode_is_read_only_when_it_is_one_we_can_read():
    rule = pooling.sentence_transformers_rule
    assert rule({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}) == ("mean", "mean_tokens")
    assert rule({"pooling_mode_cls_token": True, "word_embedding_dimension": 8}) == ("first_token", "cls_token")
    assert rule({"pooling_mode_lasttoken": True}) == ("last_non_pad", "lasttoken")
    assert rule({"pooling_mode_max_tokens": True}) == (None, "max_tokens")
    assert rule({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}) == (None, "mean_tokens+max_tokens")
    assert rule({"pooling_mode_mean_tokens": 1}) == (None, "no mode")  # only a true boolean is a mode
    assert rule({}) == (None, "no mode")


def test_how_a_rule_is_chosen_or_refused():
    gpt2, bert = SimpleNamespace(model_type="gpt2"), SimpleNamespace(model_type="bert")
    assert pooling.pooling_rule(gpt2, ("last_non_pad", "why")) == "last_non_pad"
    assert pooling.pooling_rule(gpt2, ("last_non_pad", "why"), "auto", trained_for="mean") == "mean"
    assert pooling.pooling_rule(bert, ("pooler", "why"), "pooler") == "pooler"
    assert pooling.pooling_rule(bert, ("pooler", "why"), "last") == "last_non_pad"
    assert pooling.pooling_rule(bert, ("pooler", "why"), "first", trained_for="mean") == "first_token"
    with pytest.raises(UserError) as refused:
        pooling.pooling_rule(gpt2, ("last_non_pad", "why"), "pooler")
    assert str(refused.value) == "--pooling pooler: a gpt2 model has no pooler; use auto, last, first or mean"
    with pytest.raises(UserError) as refused:
        pooling.pooling_rule(gpt2, (None, "a gpt2 model (X): reasons"), "mean")
    assert str(refused.value) == ("a gpt2 model (X): reasons: the feature cache cannot serve it; run without "
                                  "--feature_cache (the Trainer path runs the whole model)")


def test_the_position_each_rule_reads():
    ids = torch.tensor([[5, 6, 7, 0, 0], [0, 0, 5, 6, 7], [5, 0, 6, 0, 0], [0, 0, 0, 0, 0]])  # pad id 0
    assert pooling.pooled_index(ids, "last_non_pad", 0).tolist() == [2, 4, 2, 0]  # right, left, inner pad, all pad
    assert pooling.pooled_index(ids, "last_non_pad", 7).tolist() == [4, 3, 4, 4]
    for rule in ("pooler", "first_token"):
        index = pooling.pooled_index(ids, rule, 0)
        assert index.tolist() == [0, 0, 0, 0] and index.dtype == torch.long


def base_output():
    hidden = [torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2) + 100 * layer for layer in range(3)]
    return SimpleNamespace(hidden_states=hidden, last_hidden_state=hidden[2], pooler_output=torch.full((2, 2), -1.0))


def test_pooling_reads_the_head_input_at_the_top_and_the_same_position_below():
    out, ids = base_output(), torch.tensor([[4, 5, 0], [4, 0, 0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    last = pooling.pool_layers(out, ids, "last_non_pad", 0, [0, 2], top=2, attention_mask=mask)
    assert last[0].tolist() == [[2, 3], [6, 7]] and last[2].tolist() == [[202, 203], [206, 207]]
    pooler = pooling.pool_layers(out, ids, "pooler", 0, [1, 2], top=2)
    assert pooler[1].tolist() == [[100, 101], [106, 107]] and pooler[2].tolist() == [[-1, -1], [-1, -1]]
    mean = pooling.pool_layers(out, ids, "mean", 0, [0, 2], top=2, attention_mask=mask)
    assert mean[0].tolist() == [[1, 2], [6, 7]] and mean[2].tolist() == [[201, 202], [206, 207]]
    everything = pooling.pool_layers(out, ids, "mean", 0, [0], top=2)  # no mask: every position is a token
    assert everything[0].tolist() == [[2, 3], [8, 9]]
    empty = pooling.pool(out, ids, torch.zeros_like(mask), "mean", 0)  # no token: zeros, not a division by 0
    assert empty.tolist() == [[0, 0], [0, 0]]
    assert pooling.pool(out, ids, mask, "first_token", 0).tolist() == [[200, 201], [206, 207]]


def test_the_probed_layers():
    config = SimpleNamespace(num_hidden_layers=4)
    assert pooling.num_layers(config) == 4
    assert pooling.probed_layers(None, config, "m") == [4] == pooling.probed_layers(["last"], config, "m")
    assert pooling.probed_layers(["all"], config, "m") == [0, 1, 2, 3, 4]
    assert pooling.probed_layers(["2", "0", "2"], config, "m") == [0, 2, 4]
    with pytest.raises(UserError) as refused:
        pooling.probed_layers(["5", "-1", "3"], config, "tiny")
    assert str(refused.value) == "--probe_layers 5 -1: tiny has layers 0 (embeddings) to 4"


@pytest.mark.parametrize("pad", [0, 1, 9])
def test_own_rule_finds_gpt2s_last_token_and_berts_pooler(pad):
    torch.manual_seed(0)
    gpt2 = GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=60, n_positions=8,
                                                    pad_token_id=pad))
    assert pooling.own_rule(gpt2) == ("last_non_pad", "the model's own head reads the last token of the text "
                                                      "(found by running it)")
    bert = BertForSequenceClassification(BertConfig(num_hidden_layers=1, hidden_size=8, num_attention_heads=2,
                                                    intermediate_size=16, vocab_size=60, pad_token_id=pad))
    assert pooling.own_rule(bert)[0] == "pooler"
    assert gpt2.training and bert.training  # as it was given


def test_own_rule_says_why_a_model_cannot_be_cached():
    class Broken(GPT2ForSequenceClassification):
        def forward(self, *args, **kwargs):
            raise RuntimeError("no forward here")

    model = Broken(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=60, n_positions=8))
    assert pooling.own_rule(model) == (None, "a gpt2 model (Broken): its head could not be run on stored features "
                                             "(RuntimeError: no forward here)")


def test_own_rule_leaves_the_models_head_as_it_was_and_runs_a_bfloat16_base():
    torch.manual_seed(0)
    gpt2 = GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=60, n_positions=8,
                                                    pad_token_id=0))
    before = {k: v.clone() for k, v in gpt2.score.state_dict().items()}
    assert pooling.own_rule(gpt2)[0] == "last_non_pad"
    assert all(torch.equal(before[k], v) for k, v in gpt2.score.state_dict().items())  # its own head untouched
    gpt2.base_model.to(torch.bfloat16)  # --base_dtype bfloat16: the probe head runs in the base's dtype
    assert pooling.own_rule(gpt2)[0] == "last_non_pad"


class MaxPooled(GPT2ForSequenceClassification):
    """A head that reads the maximum over the positions: no stored vector reproduces it."""

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return SimpleNamespace(logits=self.score(hidden.max(dim=1).values))


class Blind(GPT2ForSequenceClassification):
    """A head that reads nothing of its input: every stored vector reproduces it."""

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        self.transformer(input_ids=input_ids, attention_mask=attention_mask)
        return SimpleNamespace(logits=self.score.weight.sum(1).expand(input_ids.shape[0], -1) * 0)


def test_own_rule_names_a_head_no_vector_reproduces_and_one_every_vector_does():
    config = GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=60, n_positions=8, pad_token_id=0)
    torch.manual_seed(0)
    assert pooling.own_rule(MaxPooled(config)) == (None, (
        "a gpt2 model (MaxPooled): its *ForSequenceClassification reads its base output in a way no single stored "
        "vector reproduces (not the pooler, the first, the last non-pad token or the mean)"))
    assert pooling.own_rule(Blind(config)) == (None, (
        "a gpt2 model (Blind): its *ForSequenceClassification reads its base output ambiguously (first_token, "
        "last_non_pad, mean)"))

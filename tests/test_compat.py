"""frozen_glue/core/compat.py: each private symbol of transformers, accelerate and datasets the project touches still does
what the project relies on (one small test each), none is touched elsewhere, and a version other than the verified
one is named in one line at a run's start."""

import logging
import re

import datasets
import pytest
import torch

from frozen_glue.core import compat

from conftest import MODULE_FILES


def test_no_private_third_party_symbol_outside_compat():
    private = re.compile(r"_hf_deepspeed_config_weak_ref|_reset_state|_hf_hook|_old_forward|\._fingerprint\b|"
                         r"_init_weights|batch_sampler\b.*batch_sampler")
    offenders = [f"{path.name}:{n}: {line.strip()}" for path in MODULE_FILES.values()
                 if path.name != "compat.py"
                 for n, line in enumerate(path.read_text().splitlines(), start=1)
                 if private.search(line) and not line.lstrip().startswith(("#", '"""'))]
    assert offenders == [] or all("compat." in o for o in offenders), offenders


def test_hf_deepspeed_config_is_unset_inside_and_restored_after():
    from transformers.integrations import deepspeed as hf_deepspeed

    sentinel = object()
    saved = hf_deepspeed._hf_deepspeed_config_weak_ref
    hf_deepspeed._hf_deepspeed_config_weak_ref = sentinel
    try:
        with compat.no_hf_deepspeed_config():
            assert hf_deepspeed._hf_deepspeed_config_weak_ref is None and not hf_deepspeed.is_deepspeed_zero3_enabled()
        assert hf_deepspeed._hf_deepspeed_config_weak_ref is sentinel
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved


def test_init_weights_is_the_models_own_head_init():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    config = GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, initializer_range=0.5)
    model = GPT2ForSequenceClassification(config)
    with torch.no_grad():
        model.score.weight.zero_()
    torch.manual_seed(0)
    compat.init_weights(model, model.score)
    assert 0.3 < model.score.weight.std().item() < 0.7  # N(0, initializer_range), not zeros or PyTorch's default


def test_accelerate_hooks_are_found_and_dropped():
    from accelerate.hooks import ModelHook, add_hook_to_module

    module = torch.nn.Sequential(torch.nn.Linear(2, 2))
    assert compat.hf_hook(module[0]) is None
    hook = ModelHook()
    add_hook_to_module(module[0], hook)
    assert compat.hf_hook(module[0]) is hook and "forward" in module[0].__dict__
    compat.drop_hooks(module)
    assert compat.hf_hook(module[0]) is None
    assert not {"_hf_hook", "_old_forward", "forward"} & set(module[0].__dict__)  # the class's forward again
    assert module(torch.ones(1, 2)).shape == (1, 2)


def test_accelerate_state_is_reset():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    Accelerator(cpu=True)
    assert AcceleratorState._shared_state and PartialState._shared_state
    compat.reset_accelerate_state()
    assert not AcceleratorState._shared_state and not PartialState._shared_state


def test_inner_batch_sampler_of_a_data_loader_shard():
    from accelerate.data_loader import BatchSamplerShard, DataLoaderShard
    from torch.utils.data import BatchSampler, SequentialSampler

    inner = BatchSampler(SequentialSampler(range(8)), batch_size=2, drop_last=False)
    loader = DataLoaderShard(list(range(8)), batch_sampler=BatchSamplerShard(inner, num_processes=1, process_index=0))
    assert compat.inner_batch_sampler(loader) is inner
    assert compat.inner_batch_sampler(torch.utils.data.DataLoader(list(range(4)), batch_size=2)) is None


def test_dataset_fingerprint_follows_the_content():
    ds = datasets.Dataset.from_dict({"a": [1, 2, 3]})
    fp = compat.dataset_fingerprint(ds)
    assert isinstance(fp, str) and len(fp) >= 16
    assert compat.dataset_fingerprint(ds.select([0, 1])) != fp


def test_a_moved_symbol_fails_by_name():
    class Old:
        pass

    with pytest.raises(RuntimeError, match=r"datasets .* has no Old._fingerprint \(verified with 5\.2\.0\); see "
                                           r"frozen_glue/core/compat.py"):
        compat._private(Old, "_fingerprint", "datasets")


def test_versions_are_named_in_one_line_only_when_they_differ(monkeypatch, caplog):
    monkeypatch.setattr(compat, "VERIFIED", {p: compat.installed(p) for p in compat.VERIFIED})
    with caplog.at_level(logging.WARNING, logger="frozen_glue.core.compat"):
        assert compat.check_versions() is None
    monkeypatch.setattr(compat, "VERIFIED", {**compat.VERIFIED, "datasets": "0.0.1"})
    line = compat.check_versions()
    assert line.startswith("frozen_glue/core/compat.py was verified with transformers ") and "datasets 0.0.1" in line
    assert f"installed: datasets {compat.installed('datasets')} (private" in line and "\n" not in line


def test_lm_eval_records_our_commit_inside_and_its_own_lookup_after():
    pytest.importorskip("lm_eval")
    from lm_eval import evaluator

    own = evaluator.get_git_commit_hash
    with compat.quiet_lm_eval_git("abc123"):
        assert evaluator.get_git_commit_hash() == "abc123"
    assert evaluator.get_git_commit_hash is own


def test_a_copy_of_a_hooked_module_runs_its_own_forward():
    import copy

    from accelerate.hooks import ModelHook, add_hook_to_module

    class Double(ModelHook):
        def post_forward(self, module, output):
            return output * 2

    layer = torch.nn.Linear(2, 2)
    add_hook_to_module(layer, Double())
    x = torch.ones(1, 2)
    twin = copy.copy(layer)
    assert torch.equal(twin(x), 2 * torch.nn.functional.linear(x, layer.weight, layer.bias))  # the hook, via the copy
    compat.drop_hook_attributes(twin)
    assert torch.equal(twin(x), torch.nn.functional.linear(x, layer.weight, layer.bias))

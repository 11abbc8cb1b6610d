"""Every private symbol of transformers, accelerate, datasets, DeepSpeed and lm-eval the project touches, and nowhere else:
exactness rests on them (which head init, which data fingerprint, which process state), so an upgrade that moves
one must fail here, by name, not deep in a run or silently. `check_versions()` (at a run's start) prints one line
when the installed versions are not the ones these were verified with; tests/test_compat.py checks each symbol.

DeepSpeed: no private symbol is touched (ds_config.py uses transformers' public HfTrainerDeepSpeedConfig).

Must not decide anything about runs: each function does the one private thing its name says."""

import contextlib
import importlib.metadata
import logging

logger = logging.getLogger(__name__)

# the versions every symbol below was verified with (requirements.txt pins the same)
VERIFIED = {"transformers": "5.23.0", "accelerate": "1.15.0", "datasets": "5.2.0", "deepspeed": "0.19.8",
            "lm_eval": "0.4.13"}


def _private(owner, name: str, package: str):
    """`owner.name`, or an error naming the symbol, the package and the verified version."""
    try:
        return getattr(owner, name)
    except AttributeError:
        raise RuntimeError(f"{package} {installed(package)} has no {getattr(owner, '__name__', owner)}.{name} "
                           f"(verified with {VERIFIED[package]}); see frozen_glue/core/compat.py") from None


def installed(package: str):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_versions() -> str | None:
    """One warning line when an installed package differs from the verified one (None when all match)."""
    differ = {p: installed(p) for p, v in VERIFIED.items() if installed(p) not in (None, v)}
    if not differ:
        return None
    line = (f"frozen_glue/core/compat.py was verified with {', '.join(f'{p} {v}' for p, v in VERIFIED.items())}; "
            f"installed: {', '.join(f'{p} {v}' for p, v in differ.items())} (private internals may have moved: "
            f"run tests/test_compat.py)")
    logger.warning(line)
    return line


# --------------------------------------------------------------------------------------------- transformers


@contextlib.contextmanager
def no_hf_deepspeed_config():
    """Inside: no DeepSpeed config registered process-wide (a ZeRO-3 config would make from_pretrained partition the
    model); after: the one that was registered, restored. transformers keeps it in a private module global."""
    from transformers.integrations import deepspeed as hf_deepspeed

    saved = _private(hf_deepspeed, "_hf_deepspeed_config_weak_ref", "transformers")
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved


def init_weights(model, module):
    """Initialise `module` (a head) as `model`'s own from_pretrained initialises missing weights."""
    module.apply(_private(model, "_init_weights", "transformers"))


# ---------------------------------------------------------------------------------------------- accelerate

HOOK_ATTRS = ("_hf_hook", "_old_forward", "forward")  # what accelerate's add_hook_to_module sets on a module


def hf_hook(module):
    """accelerate's hook on a module placed by a device map, or None."""
    return getattr(module, "_hf_hook", None)


def drop_hooks(module):
    """Remove accelerate's hooks from `module` and its children without onloading anything."""
    for sub in module.modules():
        for attr in HOOK_ATTRS:
            sub.__dict__.pop(attr, None)


def drop_hook_attributes(copied):
    """A shallow copy of a module without the instance attributes accelerate's add_hook_to_module set on the
    original (`forward` bound to the original, `_old_forward`, `_hf_hook`): the copy runs its class's own forward."""
    for name in ("forward", "_old_forward", "_hf_hook"):
        copied.__dict__.pop(name, None)


def reset_accelerate_state():
    """Forget accelerate's process state (a process that left its process group goes on alone)."""
    from accelerate.state import AcceleratorState

    _private(AcceleratorState, "_reset_state", "accelerate")(reset_partial_state=True)


def inner_batch_sampler(loader):
    """The batch sampler accelerate's DataLoaderShard wraps (its BatchSamplerShard's `batch_sampler`), or None:
    DataLoaderShard does not forward set_epoch to it."""
    return getattr(getattr(loader, "batch_sampler", None), "batch_sampler", None)


# ------------------------------------------------------------------------------------------------ datasets


def dataset_fingerprint(ds) -> str:
    """datasets' own fingerprint of a Dataset (its cache identity: the source and every transform)."""
    return _private(ds, "_fingerprint", "datasets")


# ------------------------------------------------------------------------------------------------- lm-eval


@contextlib.contextmanager
def quiet_lm_eval_git(commit: str):
    """Inside: lm-eval's results record `commit` as their git hash instead of running `git describe` in the
    working directory, which prints git's "fatal: not a git repository" outside a checkout (its stderr is not
    captured). lm-eval's evaluator imports the function by name, so it is replaced there."""
    from lm_eval import evaluator

    saved = _private(evaluator, "get_git_commit_hash", "lm_eval")
    evaluator.get_git_commit_hash = lambda: commit
    try:
        yield
    finally:
        evaluator.get_git_commit_hash = saved

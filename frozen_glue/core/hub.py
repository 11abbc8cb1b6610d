"""The hub's two rules: is the Hugging Face hub off, and can a name be a hub id at all. Offline is decided by
huggingface_hub's own rule (HF_HUB_OFFLINE), never by probing the network: loading is lazy, and a load that cannot
reach the hub fails in the library, where we turn its error into one line that names the local alternative. Must
not touch the network."""

from pathlib import Path


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def is_local_path(name: str) -> bool:
    """Whether `name` can only be a local path, never a hub id (a hub id is `name` or `namespace/name`): it starts
    with '.', '/' or '~', exists here, or has more than one '/'. The one test of "looks like a local path"; what a
    missing one means (an error, a problem line) is the caller's."""
    return name.startswith((".", "/", "~")) or Path(name).exists() or name.count("/") > 1

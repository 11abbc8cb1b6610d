"""Is the Hugging Face hub off? Decided by huggingface_hub's own rule (HF_HUB_OFFLINE), never by probing the
network: loading is lazy, and a load that cannot reach the hub fails in the library, where we turn its error into
one line that names the local alternative. Must not touch the network."""


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)

"""Is the Hugging Face hub reachable? Asked once, quickly, so that offline machines fail in a second with a
useful message instead of spending 20 s in retries.

`ensure_offline_mode_if_unreachable()` must run before transformers/datasets are imported: both read
HF_HUB_OFFLINE when they are imported.
"""

import os
import socket

_reachable = None


def hub_reachable(timeout: float = 1.5) -> bool:
    global _reachable
    if _reachable is None:
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            _reachable = False
        else:
            try:
                host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
                socket.create_connection((host, 443), timeout=timeout).close()
                _reachable = True
            except OSError:
                _reachable = False
    return _reachable


def ensure_offline_mode_if_unreachable():
    """Switch the HF libraries to their local caches when the hub cannot be reached."""
    if not hub_reachable():
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"

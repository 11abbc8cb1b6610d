"""DeepSpeed config checks: a config must parse, take the values the HF Trainer fills for "auto" (with the
Trainer's own filling code), and pass DeepSpeed's own config class. Must not start any distributed work."""

import json
from pathlib import Path

from frozen_glue.core.errors import UserError
from frozen_glue.core.provenance import PROJECT_ROOT


def validate_ds_config(path, what="DS_CONFIG"):
    """The parsed config, or a UserError naming what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        known = ", ".join(sorted(f"ds_configs/{p.name}" for p in (PROJECT_ROOT / "ds_configs").glob("*.json")))
        raise UserError(f"{what} {path} does not exist; pick one of {known}")
    try:
        config = json.loads(path.read_text())
    except ValueError as e:
        raise UserError(f"{what} {path} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise UserError(f"{what} {path} must hold one JSON object")
    try:
        from deepspeed.runtime.config import DeepSpeedConfig  # here: DeepSpeed is slow to import

        filled = trainer_filled(config)
        # the global batch follows from micro-batch x accumulation x processes: let DeepSpeed derive it with the
        # process count it sees, not the one of the throw-away arguments used for filling
        filled.pop("train_batch_size", None)
        DeepSpeedConfig(filled)
    except ImportError:
        raise UserError("DeepSpeed is not installed: pip install -r requirements.txt, or LAUNCHER=python") from None
    except Exception as e:  # noqa: BLE001 - DeepSpeed and transformers raise assorted types for bad configs
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"{what} {path} is not a valid DeepSpeed config: {first}") from None
    return config


def trainer_filled(config, hidden_size=1600, steps=1000):
    """The config as the HF Trainer would hand it to DeepSpeed (its "auto" values filled by its own code)."""
    import tempfile
    from types import SimpleNamespace

    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig, unset_hf_deepspeed_config

    hf = HfTrainerDeepSpeedConfig(json.loads(json.dumps(config)))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            args = TrainingArguments(output_dir=tmp, report_to="none")
        hf.trainer_config_process(args)
        hf.trainer_config_finalize(args, SimpleNamespace(config=SimpleNamespace(hidden_size=hidden_size)), steps)
        return hf.config
    finally:
        unset_hf_deepspeed_config()  # filling registers the config process-wide; this process trains nothing

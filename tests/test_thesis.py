"""The thesis in one command: `make thesis` runs GPT-2 XL and COMET-DISTIL x 9 tasks x 5 seeds as the thesis did,
and its flags resolve to the same training arguments on any GPU count."""

import os
import re
import subprocess
import sys

import pytest

from frozen_glue.config import arguments, protocols
from frozen_glue.core.errors import UserError

from conftest import ROOT


@pytest.mark.parametrize("gpus, per_device, accumulation", [(1, 32, 2), (2, 32, 1), (8, 8, 1)])
def test_thesis_training_arguments_on_1_2_and_8_gpus(gpus, per_device, accumulation):
    model, data, study, training = arguments.parse_args(
        ["--model_name_or_path", "gpt2-xl", "--task_name", "rte", "--output_dir", "o", "--do_train", "--do_eval",
         *protocols.thesis_args(gpus)])
    assert (training.per_device_train_batch_size, training.gradient_accumulation_steps) == (per_device, accumulation)
    assert training.per_device_train_batch_size * gpus * training.gradient_accumulation_steps == 64
    assert training.learning_rate == 2e-5 and training.num_train_epochs == 3.0
    assert data.max_seq_length == 128 and data.pad_to_max_length is True
    assert model.base_dropout is True and model.freeze_base is True
    with pytest.raises(UserError, match="3 process"):
        protocols.thesis_args(3)


def test_dry_run_make_thesis_prints_the_90_commands(tmp_path):
    """No model is needed to see what would run (COMET_DIR unset, the hub off)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COMET_DIR", "COMET_TOKENIZER_DIR", "TASKS", "SEEDS")}
    env.update(DRY_RUN="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run(["make", "-s", "thesis", f"VENV={os.path.dirname(os.path.dirname(sys.executable))}",
                           f"RUNS={tmp_path / 'runs'}", f"REPORTS={tmp_path / 'reports'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning: model comet-distil: COMET_DIR is not set; export COMET_DIR=" in proc.stdout  # said, not hidden
    commands = [ln for ln in proc.stdout.splitlines() if "run_glue_frozen.py" in ln]
    assert len(commands) == 2 * 9 * 5
    seen = set()
    for c in commands:
        gpus = int(re.search(r"--num_gpus (\d+)", c).group(1))
        per_device = int(re.search(r"--per_device_train_batch_size (\d+)", c).group(1))
        accumulation = int(re.search(r"--gradient_accumulation_steps (\d+)", c).group(1))
        assert c.split()[0].endswith("deepspeed") and "ds_configs/zero2.json" in c
        assert per_device * gpus * accumulation == 64
        for flag in ("--base_dropout", "--pad_to_max_length", "--max_seq_length 128", "--learning_rate 2e-5",
                     "--num_train_epochs 3"):
            assert flag in c, flag
        model = re.search(r"--model_name_or_path (\S+)", c).group(1)
        task = re.search(r"--task_name (\S+)", c).group(1)
        seed = re.search(r"--seed (\d+)", c).group(1)
        seen.add((model, task, seed))
    assert len(seen) == 90 and {m for m, _, _ in seen} == {"gpt2-xl", "'${COMET_DIR}'"}  # shell-quoted
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()

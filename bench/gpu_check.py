"""`make gpu-check`: what only a GPU machine can check, on tiny offline models (a minute or two).

1. The cached path in bf16 agrees with fp32: features within a relative error of 2^-6 (bf16 keeps 8 significant
   bits; two rounding steps per layer stay well inside this on a 2-layer model), and the validation predictions
   of the trained heads agree on at least 95% of rows.
2. The Trainer path runs on the GPU and completes.
3. DeepSpeed ZeRO-2 and ZeRO-3 (the deepspeed launcher, one GPU) run and give the Trainer path's metrics (1e-4).

Prints one line per check and exits 1 if any failed (2: no CUDA GPU here).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FEATURE_TOLERANCE = 2 ** -6
AGREEMENT = 0.95
TRAIN = ["--task_name", "sst2", "--do_train", "--do_eval", "--num_train_epochs", "2", "--learning_rate", "1e-2",
         "--per_device_train_batch_size", "16", "--disable_tqdm", "true", "--seed", "1"]


def run(args, launcher=None):
    command = [*(launcher or [sys.executable]), str(ROOT / "run_glue_frozen.py"), *map(str, args)]
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr or proc.stdout).strip().splitlines()[-1])
    return proc


def results(folder):
    return json.loads((Path(folder) / "all_results.json").read_text())


def main(argv=None) -> int:
    # no options: --help prints what is checked, also on a machine without a GPU
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                            allow_abbrev=False).parse_args(argv)
    import torch
    from safetensors.torch import load_file

    from frozen_glue.demo import tiny

    if not torch.cuda.is_available():
        print("error: make gpu-check needs a CUDA GPU, and this machine has none; run it on a GPU machine",
              file=sys.stderr)
        return 2
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    failed = []

    def check(name, ok, detail):
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
        if not ok:
            failed.append(name)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        assets = tiny.build_demo(tmp / "assets")
        base = ["--model_name_or_path", assets["base"], "--glue_dir", assets["glue_dir"], *TRAIN]
        for precision in ("fp32", "bf16"):
            run([*base, "--output_dir", tmp / precision, "--feature_cache", tmp / f"cache-{precision}",
                 *(["--bf16", "true"] if precision == "bf16" else [])])
        worst = 0.0
        for entry in sorted((tmp / "cache-fp32").rglob("*.safetensors")):
            [twin] = (tmp / "cache-bf16").rglob(entry.name.split("-")[0] + "-*.safetensors")
            a, b = load_file(entry)["features"], load_file(twin)["features"]
            worst = max(worst, float(((a - b).abs().max() / a.abs().max())))
        check("bf16 features vs fp32", worst <= FEATURE_TOLERANCE,
              f"max relative error {worst:.2e} (tolerance {FEATURE_TOLERANCE:.2e})")
        rows = [[json.loads(line)["prediction"] for line in (tmp / p / "predictions_validation.jsonl").open()]
                for p in ("fp32", "bf16")]
        agree = sum(x == y for x, y in zip(*rows)) / len(rows[0])
        check("bf16 predictions vs fp32", agree >= AGREEMENT, f"{agree:.1%} of validation rows agree "
              f"(at least {AGREEMENT:.0%})")

        run([*base, "--output_dir", tmp / "trainer"])
        trainer = results(tmp / "trainer")
        check("Trainer path on the GPU", "eval_accuracy" in trainer, f"eval_accuracy {trainer['eval_accuracy']:.4f}")
        launcher = [str(Path(sys.executable).parent / "deepspeed"), "--num_gpus", "1", "--master_port", "29533"]
        for stage in ("zero2", "zero3"):
            try:
                run([*base, "--output_dir", tmp / stage, "--deepspeed", ROOT / "ds_configs" / f"{stage}.json"],
                    launcher)
                got = results(tmp / stage)
                check(f"DeepSpeed {stage} on the GPU", abs(got["eval_loss"] - trainer["eval_loss"]) <= 1e-4,
                      f"eval_loss {got['eval_loss']:.6f} vs Trainer path {trainer['eval_loss']:.6f}")
            except RuntimeError as e:
                check(f"DeepSpeed {stage} on the GPU", False, str(e))
    print(f"{'all checks passed' if not failed else 'failed: ' + ', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:  # a run that should have worked did not: its own last line says why
        print(f"FAIL: a run failed: {e}")
        sys.exit(1)

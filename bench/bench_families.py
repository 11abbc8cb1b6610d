#!/usr/bin/env python
"""Every family on both paths: for each tiny random model of demo/families.py's FAMILIES, one Trainer-path run and
one cached run with --probe_layers all on the same synthetic SST-2 rows and seed, and a table of what the cached
path read (pooling.own_rule), |Δ eval loss| against the
Trainer path, whether the predictions are equal, and how many layers were probed. tests/test_families.py asserts
the same per family; this prints the table (docs/flags.md, the closing notes).

    python bench/bench_families.py [--families BERT Llama]
"""

import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from frozen_glue.core.errors import ArgumentParser, run_cli  # noqa: E402
from frozen_glue.demo import tiny  # noqa: E402
from frozen_glue.demo.families import FAMILIES, build_family  # noqa: E402
from frozen_glue.run import run  # noqa: E402


def one(family, glue, work):
    model = build_family(family, work / "model")
    common = ["--model_name_or_path", str(model), "--task_name", "sst2", "--glue_dir", str(glue), "--do_train",
              "--do_eval", "--num_train_epochs", "1", "--learning_rate", "2e-2", "--per_device_train_batch_size", "8",
              "--disable_tqdm", "true", "--use_cpu", "true", "--seed", "3"]
    assert run.main([*common, "--output_dir", str(work / "trainer")]) == 0
    assert run.main([*common, "--output_dir", str(work / "cached"), "--feature_cache", str(work / "cache"),
                     "--probe_layers", "all"]) == 0
    read = {p: json.loads((work / p / "all_results.json").read_text()) for p in ("trainer", "cached")}
    preds = {p: [json.loads(line)["prediction"] for line in (work / p / "predictions_validation.jsonl").open()]
             for p in ("trainer", "cached")}
    config = json.loads((work / "cached" / "config.json").read_text())
    return {"family": family, "reads": config["pooling"]["position"], "delta_loss": abs(read["cached"]["eval_loss"] - read["trainer"]["eval_loss"]),
            "same_predictions": preds["cached"] == preds["trainer"],
            "layers": len(json.loads((work / "cached" / "layer_results.json").read_text()))}


def bench(argv):
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        glue = tiny.write_glue_dir(Path(tmp) / "glue", n_train=48, n_dev=24, tasks=("sst2",))
        rows = [one(f, glue, Path(tmp) / f.replace(" ", "_")) for f in args.families]
    print("| family | the head reads | cached = Trainer: abs Δ eval loss | same predictions | layers probed |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['family']} | {r['reads']} | {r['delta_loss']:.1e} | {r['same_predictions']} | {r['layers']} |")


def main(argv=None):
    return run_cli(bench, argv)


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Benchmark: what --zero_shot costs beside one probe's feature extraction, on the same rows (real CoLA dev).

    python bench/bench_zeroshot.py [--glue_dir ../shared/data/glue] [--layers 6 --hidden 512] [--rows N]

A GPT-2 of layers x hidden built from a config (random weights: speed does not depend on their values; the BPE is
trained on the local GLUE text, as bench_cache.py's). Both read every row once on the CPU: the extraction runs the
frozen base forward over the rows (length-sorted batches of 64, the cached path's plan) and pools the last token;
the zero-shot run is lm-eval's simple_evaluate of the CoLA prompt (the row plus lm-eval's question, longer than the
row) scoring both answers, batch 64. Model loading and imports are outside both timings. Prints seconds per 1000
rows and the ratio zero-shot / extraction.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from frozen_glue.core.errors import ArgumentParser, UserError, run_cli  # noqa: E402


def extraction_seconds(model_dir, glue_dir, work, rows):
    """One probe's extraction of the validation rows: the cached path's own plan and pooling, timed."""
    import torch

    from frozen_glue.features import cache
    from frozen_glue.model.pooling import num_layers
    from frozen_glue.run.run import arguments, prepare

    args = ["--model_name_or_path", str(model_dir), "--task_name", "cola", "--glue_dir", str(glue_dir),
            "--output_dir", str(work / "probe"), "--do_train", "--do_eval", "--max_train_samples", "1",
            "--max_eval_samples", str(rows), "--use_cpu", "true", "--report_to", "none"]
    study = prepare(*arguments.parse_args(args))
    ds, top = study.tokenized["validation"], num_layers(study.config)
    writer = cache.EntryWriter(work / "validation.safetensors", len(ds), study.config.hidden_size, torch.float32)
    plan = cache.batches([len(ids) for ids in ds["input_ids"]], 64)
    started = time.time()
    cache.extract(study.model, ds, study.collator, study.pooling_rule, plan, torch.device("cpu"),
                  {top: writer}, top)
    seconds = time.time() - started
    writer.discard()
    return seconds, len(ds), sum(map(len, ds["input_ids"]))


def zero_shot_seconds(model_dir, glue_dir, work, rows):
    """lm-eval's scoring of the same rows on the model's causal-LM head, timed."""
    import lm_eval.evaluator  # noqa: F401 - imported before the clock starts (~5 s)

    from frozen_glue.config.arguments import DataTrainingArguments, ModelArguments
    from frozen_glue.core.tasks import get_task
    from frozen_glue.science import zeroshot

    task = get_task("cola")
    raw, _, _ = zeroshot.load_rows(task, DataTrainingArguments(task_name="cola", glue_dir=str(glue_dir),
                                                               max_eval_samples=rows), None)
    model, tokenizer = zeroshot.load_lm(ModelArguments(model_name_or_path=str(model_dir)))
    name = zeroshot.write_task(work / "zs", task, "validation", raw["validation"])
    started = time.time()
    zeroshot.score(model, tokenizer, work / "zs", [name], 64)
    return time.time() - started, len(raw["validation"])


def bench(argv):
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "data" / "glue"))
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--rows", type=int, default=1043, help="CoLA dev rows (all 1043 by default)")
    args = ap.parse_args(argv)
    if not (Path(args.glue_dir) / "CoLA" / "dev.tsv").is_file():
        raise UserError(f"--glue_dir {args.glue_dir} has no CoLA/dev.tsv; give the original GLUE release folder")
    from bench_models import build_gpt2

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = build_gpt2(work / "gpt2", args.glue_dir, args.layers, args.hidden)
        probe, rows, tokens = extraction_seconds(model, args.glue_dir, work, args.rows)
        prompt, zs_rows = zero_shot_seconds(model, args.glue_dir, work, args.rows)
    per = 1000 / rows
    print(f"GPT-2 {args.layers}x{args.hidden} from config, real CoLA dev, {rows} rows ({tokens} row tokens), CPU "
          f"({os.cpu_count()} cores)")
    print(f"probe extraction (base forward once): {probe * per:.2f} s per 1000 rows")
    print(f"zero-shot (lm-eval, CoLA prompt, 2 answers): {prompt * 1000 / zs_rows:.2f} s per 1000 rows")
    print(f"ratio zero-shot / extraction: {prompt / zs_rows / (probe / rows):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(bench, sys.argv[1:]))

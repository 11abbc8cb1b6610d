"""bench_cache.py --gpu: the real extraction (cache.batches with a token budget, cache.extract into a real
cache.EntryWriter) of a GPT-2-XL-shaped model built from its config (random weights, held in bfloat16 as
--base_dtype bfloat16 holds it) over real GLUE rows tokenized from --glue_dir. Prints tokens/s, TFLOP/s, MFU against
--peak_tflops, the peak GPU memory, and the GPU hours the thesis' base forward would take, with the formula.
`--device cpu --layers 2 --hidden 128` runs the same code in seconds (the test does)."""

import time
from pathlib import Path

# GLUE train + validation rows per task (the study's splits; MNLI's validation is matched + mismatched), and the
# mean GPT-2 tokens per row (pair) for the tasks a local --glue_dir may lack (estimates from the GLUE papers'
# lengths; tasks present are measured instead)
GLUE_ROWS = {"cola": 9594, "sst2": 68221, "mrpc": 4076, "stsb": 7249, "qqp": 404276, "mnli": 412349,
             "qnli": 110206, "rte": 2767, "wnli": 706}
ESTIMATED_TOKENS = {"cola": 11, "sst2": 13, "mrpc": 53, "stsb": 31, "qqp": 30, "mnli": 40, "qnli": 46, "rte": 70,
                    "wnli": 38}


def glue_rows(glue_dir, tokenizer, rows, max_length=128):
    """{task: list of token id lists}: up to `rows` train rows over the tasks present, shared in proportion to their
    GLUE sizes, tokenized as the pipeline does (pairs together, truncated to max_length)."""
    from frozen_glue.core.tasks import TASKS
    from frozen_glue.features.data import read_glue_tsv

    present = {name: t for name, t in TASKS.items() if (Path(glue_dir) / t.tsv.folder / "train.tsv").is_file()}
    total = sum(GLUE_ROWS[name] for name in present)
    out = {}
    for name, task in present.items():
        ds = read_glue_tsv(task, Path(glue_dir) / task.tsv.folder / "train.tsv")
        ds = ds.select(range(min(len(ds), max(1, rows * GLUE_ROWS[name] // total))))
        enc = tokenizer(*(list(ds[k]) for k in task.text_keys), truncation=True, max_length=max_length)
        out[name] = enc["input_ids"]
    return out


def build(layers, hidden, vocab, eos_id, device, dtype):
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    config = GPT2Config(n_layer=layers, n_embd=hidden, n_head=max(1, hidden // 64), n_positions=1024,
                        vocab_size=vocab, pad_token_id=eos_id, bos_token_id=eos_id, eos_token_id=eos_id,
                        num_labels=2)
    torch.manual_seed(0)
    with torch.device(device):
        model = GPT2ForSequenceClassification(config)
    return model.to(dtype).eval()


def flops(params, layers, hidden, plan, lengths):
    """Forward FLOPs of the plan: 2 x non-embedding parameters per padded token (the matmuls) + 4 x layers x padded
    length x width per padded token (attention scores and values, computed dense)."""
    total = 0
    for index in plan:
        longest = max(lengths[i] for i in index)
        total += len(index) * longest * (2 * params + 4 * layers * longest * hidden)
    return total


def run(args):
    import datasets
    import torch
    from transformers import DataCollatorWithPadding, GPT2TokenizerFast

    from frozen_glue.features import cache
    from frozen_glue.model.pooling import num_layers, own_rule, pooling_rule

    from bench_models import build_tokenizer

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --gpu needs a CUDA GPU (or pass --device cpu for a smoke run)")
    work = Path(args.work)
    tokenizer = GPT2TokenizerFast.from_pretrained(build_tokenizer(work / "tokenizer", args.glue_dir))
    tokenizer.pad_token = tokenizer.eos_token
    per_task = glue_rows(args.glue_dir, tokenizer, args.rows)
    ids = [row for rows in per_task.values() for row in rows]
    dataset = datasets.Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * len(r) for r in ids]})
    dtype = getattr(torch, args.base_dtype)
    model = build(args.layers, args.hidden, len(tokenizer), tokenizer.pad_token_id, device, dtype)
    params = sum(p.numel() for n, p in model.transformer.named_parameters() if not n.startswith(("wte", "wpe")))
    lengths = [len(r) for r in ids]
    plan = cache.batches(lengths, 64, args.tokens_per_batch)
    top, rule = num_layers(model.config), pooling_rule(model.config, own_rule(model))
    writer = cache.EntryWriter(work / "features.safetensors", len(ids), args.hidden, torch.float16)
    kwargs = dict(model=model, dataset=dataset, collator=DataCollatorWithPadding(tokenizer), rule=rule,
                  device=device, writers={top: writer}, top=top, desc="extract")
    cache.extract(plan=plan[-2:], **kwargs)  # warm-up: the longest batches (kernels, allocator)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.time()
    cache.extract(plan=plan, **kwargs)
    synchronize()
    seconds = time.time() - started
    writer.discard()
    report(args, per_task, plan, lengths, seconds, flops(params, args.layers, args.hidden, plan, lengths), params,
           torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
           torch.cuda.get_device_name() if device.type == "cuda" else "cpu")


def report(args, per_task, plan, lengths, seconds, total_flops, params, peak_gb, device_name):
    tokens, padded = sum(lengths), sum(len(ix) * max(lengths[i] for i in ix) for ix in plan)
    per_s, tflops = tokens / seconds, total_flops / seconds / 1e12
    print(f"device: {device_name}; model {args.layers} x {args.hidden} ({params / 1e9:.2f} B non-embedding "
          f"parameters), held in {args.base_dtype}; {len(lengths)} real GLUE train rows from "
          f"{', '.join(f'{k} {len(v)}' for k, v in per_task.items())}; {len(plan)} length-sorted batches of <= "
          f"{args.tokens_per_batch} padded tokens ({100 * tokens / padded:.0f}% real tokens)")
    print(f"extract: {seconds:.2f} s, {per_s:,.0f} tokens/s, {tflops:.1f} TFLOP/s, "
          f"MFU {100 * tflops / args.peak_tflops:.1f}%"
          f" of {args.peak_tflops:.0f} TFLOP/s (bf16 dense, H100/H200)"
          + (f", peak GPU memory {peak_gb:.1f} GiB" if peak_gb is not None else ""))
    mean = {t: sum(map(len, v)) / len(v) for t, v in per_task.items()}
    used = {t: mean.get(t, ESTIMATED_TOKENS[t]) for t in GLUE_ROWS}
    study = 2 * sum(GLUE_ROWS[t] * used[t] for t in GLUE_ROWS)
    print("tokens per row: " + ", ".join(f"{t} {used[t]:.1f}{'' if t in mean else ' (est.)'}" for t in GLUE_ROWS))
    print(f"projected base forward of the thesis: GPU hours = 2 models x sum over tasks (train + validation rows x "
          f"tokens per row) / tokens per s = {study / 1e6:.1f} M tokens / {per_s:,.0f} tokens/s / 3600 = "
          f"{study / per_s / 3600:.3f} h, once: all 49 layers, 5 seeds and every head setting read the same features")

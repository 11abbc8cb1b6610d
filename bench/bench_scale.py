#!/usr/bin/env python
"""The thesis at full size on CPU, from the feature cache onward: MNLI-sized splits (392,702 train rows, 9,815 +
9,832 validation rows) at GPT-2 XL's width (1600), synthetic features written as real cache entries.

    python bench/bench_scale.py            # full size (make bench-scale; ~15 min on 2 cores)
    python bench/bench_scale.py --quick    # small sizes, stages in one process, about a minute (the test runs it)

How the real pipeline is driven without a real forward pass: a GPT-2 of width 1600 (and 4 blocks, not 48: the head
stage does not depend on depth) is saved with a small BPE tokenizer, and an MNLI folder of synthetic sentence pairs
is written in the original GLUE layout. One `prepare()` of the run gives the exact cache key of every split and
layer (model and tokenizer fingerprints, rows digest, ...); the entries are then written through cache.EntryWriter
and cache.commit_entry (class-dependent means plus noise, float16: 1.26 GB per layer of train). Every later stage is
an unmodified `run_glue_frozen.py` invocation (in its own process, so that its peak RSS is its own) that finds its
features in the cache: 0 base forward batches. Stage times inside a run come from timers wrapped around the
pipeline's own functions (prepare, extract_features, train_heads, layer_results, choose_head_settings, finish).

Stages: entries (prepare + synthetic entries), verify (a load hashing every entry, as before the stamp, vs a load
trusting the stamps), heads (5 seeds x 3 epochs, top layer: the fast loop), layers (5 seeds x the probed layers),
grid (3 learning rates x 2 weight decays x 5 seeds on the 90% fit cut, then the chosen setting), summarize
(analysis/summarize.py over the three run trees). Then the projection of the whole XL study from the per-row costs.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from frozen_glue.core.errors import ArgumentParser, run_cli  # noqa: E402

from bench_cache import AnonPeak  # noqa: E402

SIZES = {"full": {"train": 392702, "dev": (9815, 9832), "hidden": 1600, "blocks": 4, "probe": (0, 2, 4),
                  "batch": 32},
         "quick": {"train": 1000, "dev": (100, 100), "hidden": 64, "blocks": 2, "probe": (0, 1, 2), "batch": 32},
         # an 8B-class base by simulation: Llama-3-8B's width (4096) and attention (32 query heads, 8 key/value heads:
         # grouped-query), 4 of its 32 blocks and a narrow MLP (the head stage reads features of the width alone);
         # the cache's bytes are computed for all 33 layers
         "llama-3-8b": {"train": 392702, "dev": (9815, 9832), "hidden": 4096, "blocks": 4, "probe": (4,),
                        "batch": 32, "arch": "llama", "heads": 32, "kv_heads": 8, "all_layers": 33}}
SEEDS, EPOCHS, GRID = (1, 2, 3, 4, 5), 3, (("1e-4", "1e-3", "1e-2"), ("0", "0.01"))
# GLUE (train, validation) rows per task, for the projection; MNLI's validation is matched + mismatched
GLUE_ROWS = {"cola": (8551, 1043), "sst2": (67349, 872), "mrpc": (3668, 408), "stsb": (5749, 1500),
             "qqp": (363846, 40430), "mnli": (392702, 19647), "qnli": (104743, 5463), "rte": (2490, 277),
             "wnli": (635, 71)}
XL_LAYERS, MODELS = 49, 2   # GPT-2 XL: embeddings + 48 blocks; GPT-2 XL and COMET-DISTIL


def write_mnli(glue, size):
    """MNLI in the original layout (header, sentence1, sentence2, gold_label), synthetic pairs of GLUE-like length."""
    from frozen_glue.demo.tiny import synthetic_sentences

    folder = Path(glue) / "MNLI"
    folder.mkdir(parents=True, exist_ok=True)
    labels = ("entailment", "neutral", "contradiction")
    for name, rows, seed in (("train.tsv", size["train"], 1), ("dev_matched.tsv", size["dev"][0], 2),
                             ("dev_mismatched.tsv", size["dev"][1], 3)):
        pairs = synthetic_sentences(2 * rows, seed, min_len=6, max_len=24)
        lines = ["index\tsentence1\tsentence2\tgold_label"]
        lines += [f"{i}\t{pairs[2 * i][0]}\t{pairs[2 * i + 1][0]}\t{labels[(i * 7 + seed) % 3]}" for i in range(rows)]
        (folder / name).write_text("\n".join(lines) + "\n")


def build_model(out, size):
    """A GPT-2 of the bench's width and depth (random weights) with a small byte-level BPE; for the llama-3-8b
    shape a Llama of its width and grouped-query attention."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from frozen_glue.demo import tiny

    tiny.train_bpe(out)
    tok = tiny._gpt2_tokenizer(out)
    torch.manual_seed(0)
    if size.get("arch") == "llama":
        config = LlamaConfig(vocab_size=len(tok), hidden_size=size["hidden"], num_hidden_layers=size["blocks"],
                             num_attention_heads=size["heads"], num_key_value_heads=size["kv_heads"],
                             intermediate_size=256, max_position_embeddings=256, bos_token_id=tok.eos_token_id,
                             eos_token_id=tok.eos_token_id)
        LlamaForCausalLM(config).save_pretrained(out)
    else:
        config = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=size["hidden"], n_layer=size["blocks"],
                            n_head=max(1, size["hidden"] // 64), bos_token_id=tok.eos_token_id,
                            eos_token_id=tok.eos_token_id)
        GPT2LMHeadModel(config).save_pretrained(out)
    tok.save_pretrained(out)


def run_args(work, size, alias, *extra):
    return [str(a) for a in ("--model_name_or_path", Path(work) / "model", "--task_name", "mnli", "--glue_dir",
                             Path(work) / "glue", "--output_dir", Path(work) / "runs" / alias / "mnli", "--do_train",
                             "--do_eval", "--seeds", *SEEDS, "--num_train_epochs", EPOCHS, "--learning_rate", "1e-3",
                             "--per_device_train_batch_size", size["batch"], "--feature_cache", Path(work) / "cache",
                             "--feature_dtype", "float16", "--use_cpu", "true", "--disable_tqdm", "true",
                             "--report_to", "none", "--overwrite_output_dir", *extra)]


def probe_args(size):
    return ["--probe_layers", *map(str, size["probe"])]


def stage_entries(work, size):
    """prepare() as the layers run will, then every split x layer entry written through the cache's own writer."""
    import torch

    from frozen_glue.config.arguments import parse_args
    from frozen_glue.features import cache, cache_layout
    from frozen_glue.model.pooling import num_layers
    from frozen_glue.features import cache_key
    from frozen_glue.run.prepare import prepare

    started = time.time()
    prep = prepare(*parse_args(run_args(work, size, "layers", *probe_args(size))))
    prepared = time.time() - started
    top, written = num_layers(prep.config), 0
    gen = torch.Generator().manual_seed(0)
    means = torch.randn(3, size["hidden"], generator=gen) / size["hidden"] ** 0.5
    for split, ds in prep.tokenized.items():
        parts, labels = cache_key.cache_parts(prep, split), torch.tensor(prep.raw[split]["label"])
        for i, layer in enumerate(size["probe"]):
            key = cache_layout.feature_key(**parts) if layer == top else cache_layout.feature_key(**parts, layer=layer)
            path, _ = cache_layout.entry_paths(work / "cache", prep.model_fp, "mnli", split, key)
            writer = cache.EntryWriter(path, len(ds), size["hidden"], torch.float16)
            for start in range(0, len(ds), 16384):  # bounded memory, as extraction writes
                y = labels[start:start + 16384]
                noise = torch.randn(len(y), size["hidden"], generator=gen)
                writer.write(slice(start, start + len(y)), noise + (1 + i) * means[y] * 2)
            part = parts if layer == top else {**parts, "layer": layer}
            written += cache.commit_entry(work / "cache", prep.model_fp, "mnli", split, key, writer.close(),
                                          (len(ds), size["hidden"]), torch.float16, part, layer)
    return {"prepare_s": prepared, "write_s": time.time() - started - prepared, "entry_bytes": written}


def read_chars():
    """Bytes this process has read through read() (/proc/self/io rchar): what hashing reads; mapped pages not."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def stage_verify(work, size):
    """Every entry loaded as before the stamp (hashed in full: --verify_cache full, which also stamps it), then as a
    warm rerun loads it (--verify_cache stamp)."""
    from frozen_glue.features import cache, cache_layout

    paths = [p for p in (work / "cache").rglob("*.json") if p.name != cache_layout.MODEL_FILE]
    metas = [(json.loads(p.read_text()), p) for p in paths]
    out = {"entry_bytes": sum(m["bytes"] for m, _ in metas), "largest_entry_bytes": max(m["bytes"] for m, _ in metas)}
    for mode in ("full", "stamp"):
        time.sleep(0.05)  # past the filesystem clock's tick (see cache_stamp.py)
        before, started = read_chars(), time.time()
        for meta, path in metas:  # <fingerprint>/mnli/<split>-<key16>.json
            split = path.stem.rsplit("-", 1)[0]
            fingerprint = path.parent.parent.name
            assert cache.load_entry(work / "cache", fingerprint, "mnli", split, meta["key"], verify=mode) is not None
        out[mode] = {"load_s": time.time() - started, "bytes_read": read_chars() - before}
    return out


def instrument(timings):
    """Timers around the pipeline's own stage functions (module attributes, looked up at call time)."""
    from frozen_glue.run import run, runners, writer
    from frozen_glue.training import head_training

    def wrap(module, name, label):
        original = getattr(module, name)

        def timed(*args, **kwargs):
            started = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                timings.setdefault(label, []).append(time.time() - started)

        setattr(module, name, timed)

    for module, name, label in ((run, "prepare", "prepare"), (runners, "extract_features", "cache_load"),
                                (head_training, "train_heads", "train_heads"),
                                (runners, "choose_head_settings", "grid_selection"),
                                (runners, "layer_results", "layer_evaluation"), (writer, "finish", "evaluate_write")):
        wrap(module, name, label)


def stage_run(work, size, kind):
    from frozen_glue.features import cache, cache_stamp
    from frozen_glue.run.run import main

    extra = {"heads": [], "layers": probe_args(size),
             "grid": ["--head_learning_rates", *GRID[0], "--head_weight_decays", *GRID[1]]}[kind]
    timings, hashed, forwards = {}, cache_stamp.stats["bytes_hashed"], cache.stats["base_forward_batches"]
    instrument(timings)
    assert main(run_args(work, size, kind, *extra)) == 0
    return {"timings": {k: sum(v) for k, v in timings.items()}, "train_heads_calls": timings.get("train_heads"),
            "bytes_hashed": cache_stamp.stats["bytes_hashed"] - hashed,
            "base_forward_batches": cache.stats["base_forward_batches"] - forwards}


def stage_summarize(work, size):
    proc = subprocess.run([sys.executable, str(ROOT / "analysis" / "summarize.py"), "--runs", str(work / "runs"),
                           "--out", str(work / "reports")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"child_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


STAGES = {"entries": stage_entries, "verify": stage_verify, "summarize": stage_summarize,
          **{k: lambda w, s, k=k: stage_run(w, s, k) for k in ("heads", "layers", "grid")}}


def measure(name, work, quick, shape="full"):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with AnonPeak() as anon:
        result = STAGES[name](Path(work), SIZES["quick" if quick else shape])
    after = resource.getrusage(resource.RUSAGE_SELF)  # CPU seconds: wall time on a shared machine overstates
    return {**result, "peak_rss_mb": after.ru_maxrss / 1024, "peak_anon_mb": anon.peak,
            "cpu_s": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime}


def child(args):
    print("BENCH " + json.dumps(measure(args.stage, args.work, args.quick, args.shape)), flush=True)


def run_stages(names, work, quick, shape="full"):
    """{stage: figures}. Each stage in its own process (all of `names` at once: --parallel), its figures kept in
    <work>/stage-<name>.json so that a --resume'd bench reuses the stages already measured."""
    if quick:  # in this process (its peak RSS is then the whole bench's so far): no imports per stage
        started = time.time()
        return {name: {**measure(name, work, quick), "wall_s": time.time() - started} for name in names}
    saved = {name: work / f"stage-{name}.json" for name in names}
    started, procs = time.time(), {}
    for name in [n for n in names if not saved[n].exists()]:
        with open(work / f"stage-{name}.log", "w") as log:
            procs[name] = subprocess.Popen([sys.executable, __file__, "--stage", name, "--work", str(work),
                                            "--shape", shape],
                                           stdout=log, stderr=subprocess.STDOUT, text=True)
    for name, proc in procs.items():
        lines = [ln for ln in (work / f"stage-{name}.log").read_text().splitlines() if ln.startswith("BENCH ")] \
            if proc.wait() == 0 else []
        if not lines:
            sys.exit(f"bench_scale: stage {name} failed; see {work / f'stage-{name}.log'}")
        saved[name].write_text(json.dumps({**json.loads(lines[-1][6:]), "wall_s": time.time() - started}))
    return {name: json.loads(saved[name].read_text()) for name in names}


def disk(path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 1e9


def main(argv=None):
    return run_cli(bench, argv)


def bench(argv):
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (under a minute): checks the script runs")
    ap.add_argument("--work", help="keep the work folder here (default: a temp folder, removed)")
    ap.add_argument("--json", help="also write every measured figure to this JSON file")
    ap.add_argument("--parallel", action="store_true", help="run the heads, layers and grid stages at once (a machine "
                    "with cores to spare; wall times are then shared: read the CPU seconds)")
    ap.add_argument("--resume", help="a work folder of an interrupted bench (--work's subfolder): stages measured "
                    "there are reused")
    ap.add_argument("--shape", default="full", choices=["full", "llama-3-8b"], help="full: GPT-2 XL's width (the "
                    "thesis); llama-3-8b: an 8B-class base by simulation, the head stage at MNLI size and the "
                    "cache's bytes per task (docs/cache.md)")
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stage:
        return child(args)
    if args.shape != "full":
        with tempfile.TemporaryDirectory(dir=args.work) as tmp:
            return shape_report(Path(tmp), args.shape)
    if args.resume:
        return report(Path(args.resume), args.quick, args.json, args.parallel)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        return report(Path(tmp), args.quick, args.json, args.parallel)


def report(work, quick, json_path=None, parallel=False):
    import torch

    from scale_report import print_report

    size = SIZES["quick" if quick else "full"]
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{'QUICK sizes' if quick else 'full size'}: train {size['train']}, validation {size['dev'][0]} + "
          f"{size['dev'][1]} rows, width {size['hidden']}, float16 features, layers {list(size['probe'])} "
          f"(top = {size['blocks']}), {len(SEEDS)} seeds x {EPOCHS} epochs, batch {size['batch']}", flush=True)
    started = time.time()
    if not (work / "model" / "config.json").exists():
        write_mnli(work / "glue", size)
        build_model(work / "model", size)
    setup = time.time() - started
    results = {}
    groups = [["entries"], ["verify"], ["heads", "layers", "grid"] if parallel else ["heads"],
              *([] if parallel else [["layers"], ["grid"]]), ["summarize"]]
    for names in groups:
        results.update(run_stages(names, work, quick))
        print("  " + ", ".join(f"stage {n}: {results[n]['wall_s']:.1f} s" for n in names), flush=True)
    results["disk_gb"] = {"cache": disk(work / "cache"), "runs": disk(work / "runs"), "reports": disk(work / "reports")}
    results.update(setup_s=setup, total_s=time.time() - started, size=size)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1))
    print_report(results, size, setup, results["total_s"], SEEDS, EPOCHS, GRID, GLUE_ROWS, XL_LAYERS, MODELS)


def shape_report(work, shape):
    """The head stage of an 8B-class base at MNLI size (its synthetic entries, then 5 seeds x 3 epochs of the top
    layer's heads in their own process), and the float16 cache's bytes per GLUE task, last layer and all layers."""
    size = SIZES[shape]
    write_mnli(work / "glue", size)
    build_model(work / "model", size)
    results = {**run_stages(["entries"], work, False, shape), **run_stages(["heads"], work, False, shape)}
    heads = results["heads"]
    print(f"{shape} (width {size['hidden']}, {size['heads']} query / {size['kv_heads']} key-value heads), MNLI "
          f"{size['train']} train rows, {len(SEEDS)} seeds x {EPOCHS} epochs, float16 features:")
    print(f"  head stage (one process, features from the cache): {heads['wall_s']:.0f} s wall, {heads['cpu_s']:.0f} "
          f"CPU s, peak RSS {heads['peak_rss_mb']:.0f} MB (anonymous {heads['peak_anon_mb']:.0f} MB); train_heads "
          f"{heads['timings'].get('train_heads', 0):.0f} s")
    print("  cache bytes per task (train + validation rows x width x 2 bytes): | task | last layer | all "
          f"{size['all_layers']} layers |")
    for task, (train, dev) in GLUE_ROWS.items():
        one = (train + dev) * size["hidden"] * 2
        print(f"  | {task} | {one / 1e9:.2f} GB | {one * size['all_layers'] / 1e9:.1f} GB |")
    total = sum(t + d for t, d in GLUE_ROWS.values()) * size["hidden"] * 2
    print(f"  | all nine | {total / 1e9:.2f} GB | {total * size['all_layers'] / 1e9:.1f} GB |")


if __name__ == "__main__":
    sys.exit(main())

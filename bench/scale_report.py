"""bench_scale.py's printout: every stage's measured figures, the targets, and the projection of the whole XL study
from the measured per-row costs (the formula printed with its numbers)."""

GB = 1e9


def stage_line(name, r, keys=()):
    t = r.get("timings", {})
    inner = ", ".join(f"{k} {t[k]:.1f} s" for k in keys if k in t)
    return (f"{name:<10} {r['wall_s']:7.1f} s wall, {r['cpu_s']:7.1f} s CPU{f' ({inner})' if inner else ''}; "
            f"peak RSS {r['peak_rss_mb']:6.0f} MB"
            f" (anonymous {r['peak_anon_mb']:5.0f} MB: the rest is mapped cache pages)")


def costs(res, size, seeds, epochs, grid):
    """Seconds per unit, measured: per train row x epoch x head (layers run, grid's selection), per dev row x head
    evaluated (layers), per dev row x seed written (predictions, run folder), per row prepared (read, tokenize)."""
    n, d, layers, s = size["train"], sum(size["dev"]), len(size["probe"]), len(seeds)
    settings = len(grid[0]) * len(grid[1])
    lay, grd, heads = res["layers"]["timings"], res["grid"], res["heads"]["timings"]
    selection = grd["train_heads_calls"][0]  # the first train_heads call of the grid run: every setting x seed
    return {"layer_head": lay["train_heads"] / (n * epochs * s * layers),
            "grid_head": selection / (0.9 * n * epochs * s * settings),
            "top_head": heads["train_heads"] / (n * epochs * s),
            "layer_eval": lay.get("layer_evaluation", 0) / (d * s * layers),
            "write": heads["evaluate_write"] / (d * s),
            "prepare": heads["prepare"] / (n + d)}


def projection(c, seeds, epochs, grid, glue_rows, xl_layers, models):
    s, settings = len(seeds), len(grid[0]) * len(grid[1])
    n = sum(t for t, _ in glue_rows.values())
    d = sum(v for _, v in glue_rows.values())
    parts = {"layer heads": c["layer_head"] * n * epochs * s * xl_layers,
             "head grid": c["grid_head"] * 0.9 * n * epochs * s * settings,
             "layer evaluation": c["layer_eval"] * d * s * xl_layers,
             "predictions + run folders": c["write"] * d * s,
             "prepare (read, tokenize, load)": c["prepare"] * (n + d)}
    print(f"\nProjection: the whole XL study's head side on this CPU ({models} models x {len(glue_rows)} tasks x "
          f"{xl_layers} layers x {s} seeds x {epochs} epochs, grid {len(grid[0])} lr x {len(grid[1])} wd on the top "
          f"layer), from the per-row costs above; N = {n:,} train rows, D = {d:,} validation rows of all GLUE:")
    print(f"  T = {models} x [ c_layer N E S L + c_grid 0.9 N E S G + c_eval D S L + c_write D S + c_prep (N + D) ]")
    print(f"    c_layer = {c['layer_head'] * 1e9:.1f} ns, c_grid = {c['grid_head'] * 1e9:.1f} ns per train row x epoch "
          f"x head; c_eval = {c['layer_eval'] * 1e6:.2f} us per dev row x head; c_write = {c['write'] * 1e6:.1f} us "
          f"per dev row x seed; c_prep = {c['prepare'] * 1e6:.1f} us per row; E = {epochs}, S = {s}, L = {xl_layers}, "
          f"G = {settings}")
    for name, seconds in parts.items():
        print(f"  {name:<32} {models * seconds / 3600:8.2f} h")
    total = models * sum(parts.values())
    print(f"  {'total (2 cores)':<32} {total / 3600:8.2f} h   (+ the base forward: bench_cache.py --gpu)")
    cache_gb = models * xl_layers * (n + d) * 1600 * 2 / GB
    mnli_gb = xl_layers * sum(glue_rows["mnli"]) * 1600 * 2 / GB
    print(f"  feature cache, float16: {models} x {xl_layers} x (N + D) x 1600 x 2 B = {cache_gb:.0f} GB on disk; one "
          f"model's MNLI, all layers: {mnli_gb:.1f} GB. When that exceeds the page cache, each epoch reads it from "
          f"disk in random 3.2 KB rows: train the layers in slices (--probe_layers 0 8 16 ...) on a small-RAM machine")
    return total


def print_report(res, size, setup, total, seeds, epochs, grid, glue_rows, xl_layers, models):
    e, v = res["entries"], res["verify"]
    print(f"\nsetup      {setup:7.1f} s (synthetic MNLI tsv, model of width {size['hidden']} saved)")
    if "prepare_s" in e:
        print(stage_line("entries", e) + f"\n           prepare {e['prepare_s']:.1f} s (read, tokenize, load, "
              f"fingerprint), {e['entry_bytes'] / GB:.2f} GB of entries written in {e['write_s']:.1f} s")
    else:  # a --resume'd bench whose entries stage was measured by an interrupted run
        print(f"entries    {e['wall_s']:7.1f} s wall ({e.get('note', '')})")
    full, stamp = v["full"], v["stamp"]
    print(stage_line("verify", v) + f"\n           load of all {v['entry_bytes'] / GB:.2f} GB of entries (largest "
          f"{v['largest_entry_bytes'] / GB:.2f} GB): hashed in full {full['load_s']:.2f} s, "
          f"{full['bytes_read'] / GB:.2f}"
          f" GB read; by stamp {stamp['load_s']:.3f} s, {stamp['bytes_read'] / 1e3:.1f} KB read "
          f"({100 * stamp['bytes_read'] / v['entry_bytes']:.4f}% of the entry bytes)")
    keys = ("prepare", "cache_load", "train_heads", "grid_selection", "layer_evaluation", "evaluate_write")
    for name in ("heads", "layers", "grid"):
        r = res[name]
        print(stage_line(name, r, keys) + f"\n           {r['base_forward_batches']} base forward batches, "
              f"{r['bytes_hashed']} bytes hashed (a warm rerun)")
    print(stage_line("summarize", res["summarize"]) + f"; summarize.py itself peaked at "
          f"{res['summarize']['child_peak_rss_mb']:.0f} MB")
    print(f"disk       cache {res['disk_gb']['cache']:.2f} GB, run folders {res['disk_gb']['runs']:.3f} GB, reports "
          f"{res['disk_gb']['reports']:.3f} GB; whole bench {total:.0f} s")
    heads = res["heads"]
    fraction = 100 * stamp["bytes_read"] / v["entry_bytes"]
    anon = max(res[k]['peak_anon_mb'] for k in ('heads', 'layers', 'grid'))
    print(f"\nTargets: head-stage peak anonymous RSS {anon:.0f}"
          f" MB beyond the mapped features (<= 2048 MB); head stage {len(seeds)} seeds x {epochs} epochs "
          f"{heads['timings']['train_heads'] / 60:.2f} min of training, {heads['wall_s'] / 60:.2f} min the whole run "
          f"(<= 10 min); warm rerun reads {fraction:.4f}% of the entry bytes (<= 1%), hashes "
          f"{heads['bytes_hashed']} bytes")
    projection(costs(res, size, seeds, epochs, grid), seeds, epochs, grid, glue_rows, xl_layers, models)

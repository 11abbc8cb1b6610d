"""report.html beside report.md: one self-contained page (no network; CSS, script, data and figures inline) from
the same run folders: report.md rendered as HTML (every table sortable), each figure inline as SVG (figures.write
writes one beside each PNG), and an example browser per task x split x pair of models of the example-level
comparison. A browser shows each dev example's text and gold label, each model's seed-combined prediction, its
probability and how many seeds agree with it, its slices, its PVI and each model's zero-shot answer where
measured, and filters by outcome (outcomes.outcomes: the counts of report.md's example-level table), slice and
free text. Reads report.md, the SVGs and the run folders; writes report.html only."""

import html
import json
import re
from pathlib import Path

import numpy as np
from markdown_it import MarkdownIt

from frozen_glue.core import layout
from frozen_glue.core.errors import UserError
from frozen_glue.core.tasks import get_task
from frozen_glue.measures import outcomes
from frozen_glue.report import compare, zeroshot_report

SCRIPT = Path(__file__).with_name("report_html.js")
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; vertical-align: top; }
th.sortable { cursor: pointer; background: #f3f3f3; }
th[data-order="asc"]::after { content: " ▲"; } th[data-order="desc"]::after { content: " ▼"; }
.figure svg { max-width: 100%; height: auto; }
.browser { border: 1px solid #bbb; padding: 0.6em; margin: 1em 0; }
.browser .controls { display: flex; gap: 1em; flex-wrap: wrap; align-items: center; }
.browser .scroll { max-height: 36em; overflow: auto; }
code { background: #f5f5f5; }
"""


def svg_of(out: Path, png_name: str) -> str:
    """The inline SVG of a figure written as `png_name` (figures.write's twin file), without its XML prolog."""
    path = out / Path(png_name).with_suffix(".svg").name
    if not path.is_file():
        return f"<p>(figure {html.escape(png_name)} has no SVG twin: rerun summarize)</p>"
    text = path.read_text()
    return text[text.index("<svg"):]


def markdown_html(text: str, out: Path) -> str:
    """report.md as HTML: tables marked sortable, each PNG figure replaced by its SVG."""
    body = MarkdownIt("commonmark").enable("table").render(text)
    body = body.replace("<table>", '<table class="md">')
    return re.sub(r'<img src="([^"]+\.png)" alt="([^"]*)"\s*/?>',
                  lambda m: f'<div class="figure" title="{m[2]}">{svg_of(out, html.unescape(m[1]))}</div>', body)


def _seed_agreement(per_seed, vote):
    """How many of a model's seeds predict the combined class, per example (STS-B: None)."""
    return (np.asarray(per_seed) == np.asarray(vote)[None]).sum(0)


def _zero_shot(runs, model, task, split, index):
    try:
        frame = zeroshot_report.zero_shot_predictions(runs, model, task, split)
    except UserError:
        return None
    return frame["prediction"].reindex(index).tolist() if "prediction" in frame else None


def browser(runs, task_name, split, names, pa, pb, user_slices=()) -> dict:
    """One example browser's data: columns and rows (JSON-ready), and the outcome counts."""
    task = get_task(task_name)
    a, b, seeds_a, seeds_b, gold = compare.aligned(pa, pb, names)
    texts = outcomes.example_texts(task, a)
    masks = compare.slice_masks(texts, user_slices)
    slices = [[name for name, mask in masks.items() if mask[i]] for i in range(len(texts))]
    outcome = outcomes.outcomes(task, a["prediction"].to_numpy(), b["prediction"].to_numpy(), gold, names)
    label = (lambda v: task.label_names[int(v)]) if not task.is_regression else (lambda v: round(float(v), 3))
    columns, values = ["idx", "text", "gold"], [list(a.index), texts, [label(g) for g in gold]]
    for name, frame, seeds in ((names[0], a, seeds_a), (names[1], b, seeds_b)):
        columns += [f"pred {name}"]
        values += [[label(p) for p in frame["prediction"]]]
        if not task.is_regression:
            probs = np.stack(frame["probs"].to_numpy())
            columns += [f"prob {name}", f"seeds agreeing {name}"]
            values += [probs[np.arange(len(probs)), frame["prediction"].to_numpy().astype(int)].round(4).tolist(),
                       [f"{k}/{len(seeds)}" for k in _seed_agreement(seeds, frame["prediction"])]]
        if "pvi" in frame and frame["pvi"].notna().any():
            columns += [f"pvi {name}"]
            values += [frame["pvi"].round(3).tolist()]
    for name in names:
        answers = _zero_shot(runs, name, task.name, split, a.index)
        if answers is not None:
            columns += [f"zero-shot {name}"]
            values += [[None if v is None or v != v else label(v) for v in answers]]
    columns += ["slices", "outcome"]
    values += [slices, list(outcome)]
    rows = [list(r) for r in zip(*values)]
    counts = {k: int(np.sum(outcome == k)) for k in outcomes.outcome_names(task, names)}
    return {"task": task.name, "split": split, "a": names[0], "b": names[1], "columns": columns, "rows": rows,
            "counts": counts, "slices": list(masks)}


def browser_html(index: int, spec: dict) -> str:
    """One browser's controls and empty table (report_html.js fills it)."""
    total = len(spec["rows"])
    options = [f'<option value="all">all ({total})</option>'] + [
        f'<option value="{html.escape(k)}">{html.escape(k)} ({n})</option>' for k, n in spec["counts"].items()]
    slices = ['<option value="">any slice</option>'] + [
        f'<option value="{html.escape(s)}">{html.escape(s)}</option>' for s in spec["slices"]]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in spec["columns"])
    title = f"{spec['task']} ({spec['split']}): {spec['a']} vs {spec['b']}"
    return (f'<div class="browser" data-index="{index}" id="browser-{index}"><h3>{html.escape(title)}</h3>'
            f'<div class="controls"><label>outcome <select class="outcome">{"".join(options)}</select></label>'
            f'<label>slice <select class="slice">{"".join(slices)}</select></label>'
            f'<label>text <input class="search" type="search" placeholder="filter the text"></label>'
            f'<span><span class="count">{total}</span> example(s)</span> <span class="more"></span></div>'
            f'<div class="scroll"><table class="examples"><thead><tr>{head}</tr></thead><tbody></tbody></table>'
            f'</div></div>')


def page(report_md: str, out: Path, browsers: list) -> str:
    """The whole report.html."""
    data = json.dumps({"browsers": browsers}, ensure_ascii=False, allow_nan=False,
                      default=lambda v: v.item() if hasattr(v, "item") else str(v))
    data = data.replace("</", "<\\/")  # a text holding "</script>" cannot end the data block
    section = ["<h2>Example browser</h2>", "<p>Every dev example of each comparison, predictions combined over "
               "seeds as in the example-level table; the outcome counts equal that table's. Click a header to "
               "sort.</p>"] + [browser_html(i, spec) for i, spec in enumerate(browsers)]
    body = markdown_html(report_md, out)
    cut = body.find("<h2>Provenance</h2>")
    body = body + "".join(section) if cut < 0 else body[:cut] + "".join(section) + body[cut:]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>frozen-GLUE report</title>"
            f"<style>{STYLE}</style></head><body>{body}"
            f'<script type="application/json" id="report-data">{data}</script>'
            f"<script>{SCRIPT.read_text()}</script></body></html>\n")


def write(out, runs, family, user_slices=()) -> Path:
    """report.html in `out` from report.md (already written there) and the example-level `family`: (task, split,
    a, b, predictions of a, predictions of b) per comparison. Atomic."""
    out = Path(out)
    browsers = [browser(runs, task, split, (a, b), pa, pb, user_slices) for task, split, a, b, pa, pb in family]
    path = out / "report.html"
    layout.atomic_write_bytes(path, page((out / "report.md").read_text(), out, browsers).encode())
    return path

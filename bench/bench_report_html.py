#!/usr/bin/env python
"""Benchmark: report.html at real sizes (issue 33). A synthetic two-model comparison over the GLUE dev sets' sizes
(about 40 000 rows, MNLI matched and mismatched included) through report_html.browser and report_html.page, opened
in headless chromium (Debian's, driven by Playwright); prints the file size, the time to open the page, and each
filter's time (outcome, slice, free text, sort) on the largest browser. Target: every filter under 200 ms.

    python bench/bench_report_html.py [--out DIR]
"""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from frozen_glue.core.errors import ArgumentParser, UserError, run_cli
from frozen_glue.core.tasks import get_task
from frozen_glue.report import report_html

from bench_cache import ROOT  # noqa: F401  (puts the project on sys.path)

DEV_ROWS = {"cola": 1043, "sst2": 872, "mrpc": 408, "stsb": 1500, "qqp": 20000, "mnli": 9815,
            "mnli_mismatched": 9832, "qnli": 5463, "rte": 277, "wnli": 71}  # the GLUE dev sets' sizes
WORDS = "the a man woman dog walked runs did not never quickly house river green old new saw".split()
TARGET_MS = 200


def predictions(task, n, seed):
    """One model's seed-combined predictions shaped as predictions.read_predictions returns them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({k: [" ".join(rng.choice(WORDS, rng.integers(5, 25))) for _ in range(n)]
                          for k in task.text_keys}, index=pd.Index(range(n), name="idx"))
    gold = np.random.default_rng(0)  # the same gold for both models
    if task.is_regression:
        frame["label"] = gold.uniform(0, 5, n).round(2)
        frame["prediction"] = (frame["label"] + rng.normal(0, 1, n)).clip(0, 5)
        frame.attrs["per_seed"] = np.stack([frame["prediction"].to_numpy()] * 3)
        return frame
    k = task.num_labels
    frame["label"] = gold.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k), n)
    frame["prediction"] = probs.argmax(1)
    frame["probs"] = list(probs.round(4))
    frame["pvi"] = rng.normal(0.3, 1, n)
    frame.attrs["per_seed"] = np.stack([frame["prediction"].to_numpy()] * 3)
    return frame


def main(argv=None):
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=None, help="where report.html goes (default: a temporary folder)")
    args = ap.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise UserError("no chromium: apt-get install chromium (Debian's), then rerun")
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_report_html_"))
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    browsers = []
    for name, n in DEV_ROWS.items():
        task = get_task("mnli" if name.startswith("mnli") else name)
        split = "validation_mismatched" if name == "mnli_mismatched" else (
            "validation_matched" if name == "mnli" else "validation")
        browsers.append(report_html.browser(out / "no-runs", task.name, split, ("base", "derived"),
                                            predictions(task, n, 1), predictions(task, n, 2)))
    (out / "report.md").write_text("# synthetic report\n\n## Provenance\n")
    path = out / "report.html"
    path.write_text(report_html.page((out / "report.md").read_text(), out, browsers))
    rows = sum(len(b["rows"]) for b in browsers)
    print(f"{rows} example rows over {len(browsers)} browsers; report.html {path.stat().st_size / 1e6:.1f} MB, "
          f"built in {time.time() - started:.1f} s")
    largest = int(np.argmax([len(b["rows"]) for b in browsers]))
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        t0 = time.time()
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        print(f"open (parse, every browser drawn): {(time.time() - t0) * 1e3:.0f} ms")
        timings = page.evaluate("""(index) => {
            const box = document.getElementById("browser-" + index), out = {};
            function time(label, act) { const t = performance.now(); act(); out[label] = performance.now() - t; }
            const fire = (el, type) => el.dispatchEvent(new Event(type));
            const outcome = box.querySelector("select.outcome"), slice = box.querySelector("select.slice");
            const search = box.querySelector("input.search");
            time("outcome: only one right", () => { outcome.selectedIndex = 2; fire(outcome, "change"); });
            time("slice: negation", () => { slice.value = "negation"; fire(slice, "change"); });
            time("text: 'river'", () => { search.value = "river"; fire(search, "input"); });
            time("all filters cleared", () => { outcome.selectedIndex = 0; fire(outcome, "change");
                slice.value = ""; fire(slice, "change"); search.value = ""; fire(search, "input"); });
            time("sort by text", () => box.querySelectorAll("thead th")[1].click());
            return out; }""", largest)
        browser.close()
    spec = browsers[largest]
    print(f"largest browser: {spec['task']} {spec['split']}, {len(spec['rows'])} rows")
    slow = {k: v for k, v in timings.items() if v >= TARGET_MS}
    for label, ms in timings.items():
        print(f"  {label:28} {ms:7.1f} ms")
    print(json.dumps({"rows": rows, "bytes": path.stat().st_size, "timings_ms": timings}))
    print("target met: every filter under 200 ms" if not slow else f"target MISSED: {slow}")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""report.html (frozen_glue/report/report_html.py): one self-contained page beside report.md, checked in a real browser
(Debian's chromium driven by Playwright): verdicts and a table cell equal report.md's, every filter's count on a
tree with known answers, sorting, every figure an SVG that draws, no network request, no console error. Skipped
with one line when no chromium is installed (.ci/run installs it)."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from frozen_glue.core import tasks
from frozen_glue.measures import outcomes
from frozen_glue.report import report_html

from conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# a tree with known answers: 40 SST-2 dev examples, two models, 3 seeds each predicting alike, so the seed vote is
# each model's prediction. Outcomes by idx: 0-19 both right, 20-27 only a right, 28-32 only b right, 33-39 both
# wrong. "not" (the negation slice) in idx 0-9 and 20-21; "Zebra" in idx 3, 22 and 35 (capitalised: the text filter
# ignores case on both sides); idx 0-4 have 7 words (the slice "length 6-10": 5 rows, "length 1-5": 35, so a numeric
# sort and a text sort of the slice table's n differ); model b's seed 3 alone is wrong on idx 0 (b's vote stays
# right there, with 2/3 seeds agreeing).
N, OUTCOME = 40, ["both right"] * 20 + ["only a right"] * 8 + ["only b right"] * 5 + ["both wrong"] * 7


def text(i):
    return (("it is not good" if i < 10 or i in (20, 21) else "it is good") + (" and very fine" if i < 5 else "")
            + (" Zebra" if i in (3, 22, 35) else ""))


def known_tree(root):
    gold = [i % 2 for i in range(N)]
    right = {"a": [o in ("both right", "only a right") for o in OUTCOME],
             "b": [o in ("both right", "only b right") for o in OUTCOME]}
    for model in ("a", "b"):
        for seed in (1, 2, 3):
            folder = root / model / "sst2" / f"seed{seed}"
            folder.mkdir(parents=True)
            preds = [g if ok else 1 - g for g, ok in zip(gold, right[model])]
            if model == "b" and seed == 3:
                preds[0] = 1 - preds[0]
            rows = [{"idx": i, "label": g, "prediction": p, "probs": [0.2, 0.8] if p else [0.7, 0.3],
                     "pvi": 0.5, "sentence": text(i)} for i, (g, p) in enumerate(zip(gold, preds))]
            (folder / "predictions_validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            (folder / "config.json").write_text(json.dumps({"path": "cached", "seed": seed}))
            accuracy = sum(right[model]) / N
            (folder / "all_results.json").write_text(json.dumps({"eval_accuracy": accuracy + seed * 1e-3}))
    return root


def summarize(runs, out, *extra):
    proc = subprocess.run([sys.executable, ROOT / "analysis" / "summarize.py", "--runs", runs, "--out", out, *extra],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "report.html"


def test_outcomes_are_the_example_level_tables_counts():
    task = tasks.get_task("sst2")
    gold = [1, 0, 1, 0, 1]
    pa, pb = [1, 0, 0, 1, 1], [1, 1, 1, 1, 0]  # a: right, right, wrong, wrong, right; b: right, wrong, right, ...
    assert list(outcomes.outcomes(task, pa, pb, gold)) == ["both right", "only a right", "only b right",
                                                          "both wrong", "only a right"]
    stsb = tasks.get_task("stsb")  # closer to the gold score; equal distance is neither
    assert list(outcomes.outcomes(stsb, [1.0, 2.0, 3.0], [1.5, 1.0, 2.0], [1.0, 1.0, 2.5])) == [
        "a closer", "b closer", "equally close"]


def test_the_page_holds_everything_inline(tmp_path):
    html = summarize(known_tree(tmp_path / "runs"), tmp_path / "reports").read_text()
    assert not re.search(r'<img |src="http|href="http|<link ', html)  # figures inline, nothing fetched
    assert html.count("<svg") >= 2 and '<script type="application/json" id="report-data">' in html
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', html, re.S)[1].replace("<\\/", "</"))
    (spec,) = data["browsers"]
    assert spec["counts"] == {"both right": 20, "only a right": 8, "only b right": 5, "both wrong": 7}
    row = dict(zip(spec["columns"], spec["rows"][21]))
    assert row["text"] == "it is not good" and row["gold"] == "positive" and row["pred a"] == "positive"
    assert row["pred b"] == "negative" and row["seeds agreeing a"] == "3/3" and row["prob b"] == 0.7
    assert "negation" in row["slices"] and row["outcome"] == "only a right" and row["pvi a"] == 0.5
    first = dict(zip(spec["columns"], spec["rows"][0]))
    assert first["seeds agreeing b"] == "2/3" and first["seeds agreeing a"] == "3/3" and first["outcome"] == "both right"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("no chromium: the report.html browser tests need Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, path):
    """The page at file://path, with every request but the page itself and every console error recorded."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    seen = {"requests": [], "errors": []}
    page.on("request", lambda r: seen["requests"].append(r.url) if r.url != path.as_uri() else None)
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']")
    return page, seen


def test_filters_count_the_known_answers_and_sorting_works(browser, tmp_path):
    page, seen = open_page(browser, summarize(known_tree(tmp_path / "runs"), tmp_path / "reports"))
    box = page.locator(".browser").first
    count = lambda: int(box.locator(".count").inner_text())  # noqa: E731
    assert count() == 40 and box.locator("tbody tr").count() == 40
    for outcome, n in (("only a right", 8), ("only b right", 5), ("both wrong", 7), ("both right", 20)):
        box.locator("select.outcome").select_option(outcome)
        assert count() == n, outcome
    box.locator("select.outcome").select_option("only a right")
    box.locator("select.slice").select_option("negation")
    assert count() == 2  # idx 20 and 21
    box.locator("select.slice").select_option("")
    box.locator("input.search").fill("ZEBRA")  # case-insensitive: idx 22 only among "only a right"
    assert count() == 1 and box.locator("tbody tr td").first.inner_text() == "22"
    box.locator("select.outcome").select_option("all")
    assert count() == 3
    box.locator("input.search").fill("")
    idx = box.locator("thead th", has_text="idx")
    idx.click()
    idx.click()  # descending
    assert box.locator("tbody tr").first.locator("td").first.inner_text() == "39"
    # the report's own tables sort too: the slice table by its n column (12, 35, 5 and 0s: as numbers, descending
    # starts at 35; as text it would start at "5")
    table = page.locator("table.md", has=page.locator("th", has_text="slice")).first
    col = table.locator("thead th").all_inner_texts().index("n")
    first = lambda: table.locator("tbody tr").first.locator("td").nth(col).inner_text()  # noqa: E731
    table.locator("thead th").nth(col).click()
    assert first() == "0"
    table.locator("thead th").nth(col).click()
    assert first() == "35"
    assert not seen["requests"] and not seen["errors"], seen
    page.close()


def test_the_demo_page_equals_its_markdown_and_draws_every_figure(browser, tmp_path):
    demo = ROOT / "demo"
    if not (demo / "runs").is_dir():
        pytest.skip("no demo/runs: run `make demo` first (.ci/run does)")
    # the demo's report rebuilt by this code from the demo's run folders (as make demo's summarize step does)
    reports = tmp_path / "reports"
    page, seen = open_page(browser, summarize(demo / "runs", reports, "--models", ROOT / "launch" / "demo_models.tsv",
                                              "--feature_cache", demo / "cache"))
    md = (reports / "report.md").read_text()
    verdicts = [line[2:] for line in md.split("## Verdicts", 1)[1].split("\n## ", 1)[0].splitlines()
                if line.startswith("- ")]
    shown = page.locator("h2:has-text('Verdicts') + p + ul li").all_inner_texts()
    assert verdicts and [re.sub(r"[`*]", "", v) for v in verdicts] == shown
    cell = re.search(r"\| sst2 +\| accuracy +\| ([0-9.]+ ± [0-9.]+ \(n=\d\))", md)[1]
    assert page.locator("table.md td", has_text=cell).count() >= 1
    figures = page.locator(".figure svg")
    assert figures.count() == md.count("](fig_") and figures.count() > 0
    for i in range(figures.count()):
        box = figures.nth(i).bounding_box()
        assert box["width"] > 100 and box["height"] > 100 and figures.nth(i).locator("path").count() > 0
    assert not seen["requests"] and not seen["errors"], seen
    shot = os.environ.get("FROZEN_GLUE_SCREENSHOT")  # docs/report_browser.png is made this way
    browser_box = page.locator(".browser").nth(3)
    browser_box.locator("select.outcome").select_option(index=3)
    browser_box.screenshot(path=shot or str(tmp_path / "browser.png"))
    page.close()


def test_report_html_is_atomic_and_refuses_nothing_silently(tmp_path, monkeypatch):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "report.md").write_text("# r\n\n![x](fig_x.png)\n")
    written, atomic = [], report_html.layout.atomic_write_bytes
    monkeypatch.setattr(report_html.layout, "atomic_write_bytes", lambda p, b: (written.append(p), atomic(p, b)))
    path = report_html.write(out, tmp_path / "runs", [])
    assert written == [path]  # through the one atomic writer
    assert "has no SVG twin" in path.read_text() and not list(out.glob(".report.html.*"))

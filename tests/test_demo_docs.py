"""The demo's figures in the README and docs/analysis.md come from a `make demo` report (frozen_glue/demo/demo_docs.py):
the renderer's known answers on a hand-made report, the check and rewrite, and the docs against the demo run
(.ci/run runs `make demo` before `make test`)."""

import shutil

import pandas as pd
import pytest

from frozen_glue.core.errors import UserError
from frozen_glue.demo import demo_docs

from conftest import ROOT


def hand_made_report(folder):
    """A demo-shaped report where disagreements.csv states base - tiny-comet (model_a is the base), so the docs'
    tiny-comet - base is its negation: difference -0.25, interval [-0.40, -0.10], 12 only-base examples, 2 the
    other way. A renderer that forgot the flip writes +0.250 and swaps the counts."""
    folder.mkdir()
    pd.DataFrame({"task": ["cola", "sst2"], **{f"{m}_{k}": [1.0, v] for m, v in
                  (("tiny-gpt2", 0.9), ("tiny-comet", 0.65), ("tiny-random", 0.8)) for k in ("mean",)},
                  **{f"{m}_std": [0.0, 0.01] for m in ("tiny-gpt2", "tiny-comet", "tiny-random")}}
                 ).to_csv(folder / "summary.csv", index=False)
    (folder / "summary.md").write_text("| task |\n|:--|\n| sst2 |\n\nfootnote\n")
    pd.DataFrame([{"task": "sst2", "split": "validation", "model_a": "tiny-gpt2", "model_b": "tiny-comet",
                   "difference": 0.25, "ci_low": 0.10, "ci_high": 0.40, "ci_level": 0.99, "only_a_right": 12,
                   "only_b_right": 2, "test_p": 0.0004, "verdict": "tiny-gpt2 better"}]
                 ).to_csv(folder / "disagreements.csv", index=False)
    pd.DataFrame([{"slice": "negation", "score_tiny-gpt2": 0.9, "score_tiny-comet": 0.2, "p_holm": 0.0123}]
                 ).to_csv(folder / "slices_sst2_tiny-gpt2_vs_tiny-comet.csv", index=False)
    pd.DataFrame({"layer": [1, 0], "cka": [0.5, 0.875]}).to_csv(folder / "drift_sst2.csv", index=False)
    pd.DataFrame([{"task": "sst2", "model": m, "compression_mean": c, "selectivity_mean": s,
                   "v_information_bits_mean": b} for m, c, s, b in (("tiny-gpt2", 14.71, 0.3, 0.8),
                                                                    ("tiny-random", 14.2, 0.31, 0.3),
                                                                    ("tiny-comet", 1.25, 0.034, 0.28))]
                 ).to_csv(folder / "summary_information.csv", index=False)
    return folder


def test_the_figures_are_the_reports_own_numbers_stated_as_tiny_comet_minus_the_base(tmp_path):
    blocks = demo_docs.blocks(hand_made_report(tmp_path / "reports"))
    assert blocks["summary"] == "| task |\n|:--|\n| sst2 |"  # the table, not its footnote
    assert ("on SST-2 the base scores 0.900 ± 0.010 and tiny-comet 0.650 ± 0.010 (verdict: tiny-gpt2 better, "
            "-0.250 for tiny-comet, 99.00% CI at the Holm level [-0.400, -0.100]; 12 examples only the base gets "
            "right, 2 the other way, McNemar p < 0.001), and on the negation slice the base scores 0.900 and "
            "tiny-comet 0.200 (Holm-corrected p = 0.0123)") in blocks["sst2"]
    assert blocks["sst2"].endswith("embeddings first): 0.88 → 0.50.")  # by layer, not file order
    assert blocks["information"] == (
        "On the demo's SST-2 the base's top layer compresses the labels 14.7× and its random-init control 14.2×, "
        "with V-information 0.80 and 0.30 bits; tiny-comet, which cannot read \"nothing\", 1.2×, selectivity 0.03 "
        "(the base: 0.30), 0.28 bits.")


def test_check_names_a_stale_block_and_write_rewrites_only_the_blocks(tmp_path):
    reports = hand_made_report(tmp_path / "reports")
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "README.md").write_text("intro\n<!-- demo:summary -->\nold table\n<!-- /demo:summary -->\noutro\n")
    (root / "docs" / "analysis.md").write_text("no demo figures here\n")
    (root / "docs" / "flags.md").write_text("no demo figures here either\n")
    assert demo_docs.stale(reports, root) == [("README.md", "summary")]
    assert demo_docs.write(reports, root) == [("README.md", "summary")]
    assert (root / "README.md").read_text() == ("intro\n<!-- demo:summary -->\n| task |\n|:--|\n| sst2 |\n"
                                                "<!-- /demo:summary -->\noutro\n")
    assert demo_docs.stale(reports, root) == []
    (root / "docs" / "analysis.md").write_text("<!-- demo:nosuch -->\nx\n<!-- /demo:nosuch -->\n")
    with pytest.raises(UserError, match="demo block 'nosuch' has no renderer"):
        demo_docs.stale(reports, root)
    shutil.rmtree(reports)
    with pytest.raises(UserError, match="run `make demo` first"):
        demo_docs.blocks(reports)


def test_the_docs_demo_figures_equal_the_demo_run():
    reports = ROOT / "demo" / "reports"
    if not (reports / "summary_information.csv").is_file():
        pytest.skip("no demo/reports: run `make demo` first (.ci/run does) to check the docs' demo figures")
    assert demo_docs.stale(reports) == [], "the docs' demo figures differ from demo/reports: `make demo-docs`"

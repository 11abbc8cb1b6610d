"""A null study (issue 29): one model compared with itself under two aliases with disjoint seed sets, end to end
through the sweep (launch/all_tasks.sh), summarize and the report, as `make calibrate` runs it. Every verdict and
every slice test must read "no evidence": nothing differs but the seeds."""

import subprocess
import sys

import pandas as pd

from frozen_glue.sweep import calibration

from conftest import ROOT


def test_a_model_against_itself_reads_no_evidence_everywhere(assets, tmp_path):
    out = tmp_path / "null"
    proc = subprocess.run([sys.executable, "-m", "frozen_glue.sweep.calibration", "--glue_dir", assets["glue_dir"],
                           "--model", assets["base"], "--tasks", "cola", "sst2", "--seeds_a", "1", "2",
                           "--seeds_b", "3", "4", "--out", out, "--", "--num_train_epochs", "2",
                           "--learning_rate", "1e-2", "--per_device_train_batch_size", "16", "--disable_tqdm",
                           "true"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    dis = pd.read_csv(out / "reports" / "disagreements.csv")
    assert sorted(dis["task"]) == ["cola", "sst2"] and set(dis["seeds_a"]) == {2}
    assert (dis["verdict"].str.startswith("no evidence")).all(), dis[["task", "verdict", "p_holm"]]
    assert ((dis["ci_low"] <= 0) & (dis["ci_high"] >= 0)).all()
    found = calibration.false_positives(out / "reports")
    assert found["verdicts"] == 2 and found["slice_tests"] > 0
    assert found["verdict_false_positives"] == 0 and found["slice_false_positives"] == 0
    assert "0 of 2 verdicts and 0 of" in proc.stdout
    report = (out / "reports" / "report.md").read_text()
    assert "null-a vs null-b: no evidence of a difference" in report


def test_false_positives_count_verdicts_and_significant_slices(tmp_path):
    pd.DataFrame({"verdict": ["no evidence of a difference", "A better", "B better (collapsed heads: B)"]}).to_csv(
        tmp_path / "disagreements.csv", index=False)
    pd.DataFrame({"p": [0.01, 0.5, None], "significant": [True, False, False]}).to_csv(
        tmp_path / "slices_cola.csv", index=False)
    pd.DataFrame({"p": [0.2], "significant": [False]}).to_csv(tmp_path / "slices_sst2.csv", index=False)
    found = calibration.false_positives(tmp_path)
    assert found == {"verdicts": 3, "verdict_false_positives": 2, "slice_tests": 3, "slice_false_positives": 1,
                     "rate": 0.5}

"""Provenance reads the project's git state quietly (issue 35): outside a checkout it records "unknown" and prints
nothing, and a zero-shot run started from a folder outside any checkout prints no "fatal: not a git repository"
(lm-eval's own git lookup is given our commit: compat.quiet_lm_eval_git)."""

import pytest

from frozen_glue.core import provenance


def test_outside_a_checkout_the_commit_is_unknown_and_nothing_is_printed(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(provenance, "PROJECT_ROOT", tmp_path)
    assert provenance.git_commit() == "unknown"
    out = capfd.readouterr()
    assert out.out == "" and out.err == ""
    monkeypatch.undo()
    assert provenance.git_commit() not in ("unknown", None)  # this checkout has a commit


def test_a_zero_shot_run_outside_a_checkout_prints_no_git_error(script, assets, tmp_path, monkeypatch, capfd):
    pytest.importorskip("lm_eval")
    monkeypatch.chdir(tmp_path)  # lm-eval looks for a repository in the working directory
    code = script.main([str(a) for a in ("--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir",
                                         assets["glue_dir"], "--output_dir", tmp_path / "zs", "--do_eval",
                                         "--zero_shot", "--use_cpu", "true", "--max_eval_samples", "8")])
    out = capfd.readouterr()
    assert code == 0, out.err
    assert "not a git repository" not in out.out + out.err



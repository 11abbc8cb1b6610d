"""run_glue_frozen.py on its data and its inputs: the original GLUE .tsv layouts (and real CoLA when
../shared/data/glue is there), and bad input, each one line and exit code 2 with nothing half-written."""

import json
import subprocess
import sys
import time

import pytest
from test_run_glue_frozen import base_args, write_mnli

from frozen_glue.core.tasks import TASKS
from frozen_glue.features.data import read_glue_tsv

from conftest import ROOT, SHARED_GLUE, TRAIN, predictions, results, run

# ------------------------------------------------------------------------------------------ GLUE layouts

LAYOUTS = {  # task: (folder, file text in the original GLUE format, expected first row)
    "cola": ("CoLA", 'gj04\t1\t\tThe "big" cat sat.\nclc95\t0\t*\tCat the sat.\n',
             {"sentence": 'The "big" cat sat.', "label": 1}),
    "sst2": ("SST-2", "sentence\tlabel\nit 's a \"charming\" film \t1\nbad \t0\n",
             {"sentence": 'it \'s a "charming" film ', "label": 1}),
    "mrpc": ("MRPC", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe said \"hi\" .\tHe said hi .\n",
             {"sentence1": 'He said "hi" .', "sentence2": "He said hi .", "label": 1}),
    "stsb": ("STS-B", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                      "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA man.\tA \"man\".\t4.750\n",
             {"sentence1": "A man.", "sentence2": 'A "man".', "label": 4.75}),
    "qqp": ("QQP", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n7\t1\t2\tWhy \"x\"?\tWhy x?\t0\n",
            {"question1": 'Why "x"?', "question2": "Why x?", "label": 0}),
    "qnli": ("QNLI", "index\tquestion\tsentence\tlabel\n0\tWho?\tHe \"did\".\tnot_entailment\n",
             {"question": "Who?", "sentence": 'He "did".', "label": 1}),
    "rte": ("RTE", "index\tsentence1\tsentence2\tlabel\n0\tA \"b\".\tC.\tentailment\n",
            {"sentence1": 'A "b".', "sentence2": "C.", "label": 0}),
    "wnli": ("WNLI", "index\tsentence1\tsentence2\tlabel\n0\tI saw it.\tIt was seen.\t1\n",
             {"sentence1": "I saw it.", "sentence2": "It was seen.", "label": 1}),
}


@pytest.mark.parametrize("task", sorted(LAYOUTS))
def test_original_glue_layout_is_read(task, tmp_path):
    folder, text, expected = LAYOUTS[task]
    path = tmp_path / "train.tsv"
    path.write_text(text, encoding="utf-8")
    ds = read_glue_tsv(TASKS[task], path)
    row = ds[0]
    assert {k: row[k] for k in expected} == expected and row["idx"] == 0
    assert len(ds) == text.rstrip("\n").count("\n") + (0 if TASKS[task].tsv.header else 1)


def test_mnli_layout_is_read(tmp_path):
    write_mnli(tmp_path)
    ds = read_glue_tsv(TASKS["mnli"], tmp_path / "MNLI" / "dev_matched.tsv")
    assert len(ds) == 60 and ds[0]["hypothesis"] == 'he said "yes"' and set(ds["label"]) == {0, 1, 2}


@pytest.mark.skipif(not SHARED_GLUE.is_dir(), reason="../shared/data/glue is absent")
def test_real_cola_200_rows(script, tmp_path, assets, capsys):
    out = tmp_path / "run"
    code, _, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "cola",
                       "--glue_dir", SHARED_GLUE, "--output_dir", out, "--max_train_samples", "200",
                       "--max_eval_samples", "200", *TRAIN)
    assert code == 0, err
    rows = predictions(out)
    assert len(rows) == 200 and rows[0]["sentence"].startswith("The sailors rode the breeze clear of the rocks")
    config = json.loads((out / "config.json").read_text())
    assert config["debug_run"] is True and config["max_samples"] == {"max_train_samples": 200, "max_eval_samples": 200}
    assert results(out)["train_samples"] == 200


# --------------------------------------------------------------------------------------------- bad input


def bad(script, capsys, *args):
    code, _, err = run(script, capsys, *args)
    assert code != 0
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_unknown_task(script, assets, tmp_path, capsys):
    msg = bad(script, capsys, *base_args(assets, tmp_path / "r", task="colaa"))
    assert "unknown task 'colaa'" in msg and "cola sst2 mrpc stsb qqp mnli qnli rte wnli" in msg


def test_glue_dir_missing_task_folder_and_file(script, assets, tmp_path, capsys):
    (tmp_path / "glue" / "RTE").mkdir(parents=True)
    args = ["--model_name_or_path", assets["base"], "--output_dir", tmp_path / "r", *TRAIN, "--glue_dir", tmp_path / "glue"]
    assert "has no MRPC/ folder" in bad(script, capsys, *args, "--task_name", "mrpc")
    assert "RTE/train.tsv is missing" in bad(script, capsys, *args, "--task_name", "rte")


def bad_sst2(script, assets, tmp_path, capsys, train, dev="sentence\tlabel\ngood\t1\n"):
    """The one-line error for an SST-2 folder holding these train/dev texts."""
    (tmp_path / "glue" / "SST-2").mkdir(parents=True)
    (tmp_path / "glue" / "SST-2" / "train.tsv").write_text(train)
    (tmp_path / "glue" / "SST-2" / "dev.tsv").write_text(dev)
    return bad(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "sst2", "--glue_dir",
               tmp_path / "glue", "--output_dir", tmp_path / "r", *TRAIN)


def test_tsv_with_wrong_column_count_names_file_and_line(script, assets, tmp_path, capsys):
    msg = bad_sst2(script, assets, tmp_path, capsys, "sentence\tlabel\ngood\t1\nbad\t0\textra\n")
    assert "SST-2/train.tsv:3: expected 2 tab-separated columns, found 3" in msg


def test_label_outside_label_set(script, assets, tmp_path, capsys):
    msg = bad_sst2(script, assets, tmp_path, capsys, "sentence\tlabel\ngood\t1\nbad\t7\n")
    assert "train.tsv:3: label '7' is not in sst2's label set (0=negative, 1=positive)" in msg


def test_empty_split(script, assets, tmp_path, capsys):
    msg = bad_sst2(script, assets, tmp_path, capsys, "sentence\tlabel\ngood\t1\n", dev="sentence\tlabel\n")
    assert "validation split of sst2 is empty" in msg


def test_bad_model_and_tokenizer_paths(script, assets, tmp_path, capsys):
    common = ["--task_name", "sst2", "--glue_dir", assets["glue_dir"], "--output_dir", tmp_path / "r", *TRAIN]
    assert "does not exist" in bad(script, capsys, "--model_name_or_path", tmp_path / "nope", *common)
    (tmp_path / "empty").mkdir()
    assert "has no config.json" in bad(script, capsys, "--model_name_or_path", tmp_path / "empty", *common)
    assert "--tokenizer_name" in bad(script, capsys, "--model_name_or_path", assets["base"],
                                     "--tokenizer_name", tmp_path / "no-tok", *common)
    (tmp_path / "junk-tok").mkdir()
    (tmp_path / "junk-tok" / "tokenizer_config.json").write_text("{not json")
    assert "cannot read a tokenizer from" in bad(script, capsys, "--model_name_or_path", assets["base"],
                                                 "--tokenizer_name", tmp_path / "junk-tok", *common)


def test_unfreeze_deeper_than_model_and_too_long_sequences(script, assets, tmp_path, capsys):
    args = base_args(assets, tmp_path / "r")
    assert "larger than the model's depth (2 blocks)" in bad(script, capsys, *args, "--unfreeze_top_layers", "3")
    assert "exceeds the model's 128 positions" in bad(script, capsys, *args, "--max_seq_length", "512")


def test_complete_run_is_not_overwritten(script, assets, tmp_path, capsys):
    args = base_args(assets, tmp_path / "r")
    assert run(script, capsys, *args)[0] == 0
    stamp = (tmp_path / "r" / "all_results.json").stat().st_mtime_ns
    assert "already hold(s) a complete run; pass --overwrite_output_dir" in bad(script, capsys, *args)
    assert (tmp_path / "r" / "all_results.json").stat().st_mtime_ns == stamp
    assert run(script, capsys, *args, "--overwrite_output_dir")[0] == 0


def test_killed_run_leaves_no_results(assets, tmp_path):
    out = tmp_path / "r"
    args = [sys.executable, str(ROOT / "run_glue_frozen.py"), *map(str, base_args(assets, out)),
            "--num_train_epochs", "500"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (out / "config.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.kill()
    proc.wait()
    assert (out / "config.json").exists() and not (out / "all_results.json").exists()

"""Rules of the sweep's plan, stated with answers written out here (mutation testing, docs/mutants.md): each job's
command, one job per seed or per model x task with the feature cache, where its log goes, the launchers, which
complete runs are skipped, redone or refused, and when the zero-shot run rides along with the probe."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from frozen_glue.config.models_file import Model
from frozen_glue.core.errors import UserError
from frozen_glue.sweep import sweep_plan

SCRIPT = str(sweep_plan.SCRIPT)


def settings(tmp_path, **over):
    base = dict(runs=str(tmp_path / "runs"), tasks=["cola"], seeds=[1, 2], feature_cache=None, glue_dir=None,
                extra=["--num_train_epochs", "1"], uses_deepspeed=False, num_gpus=0, port=29511, ds_config="ds.json",
                zero_shot=False, redo_changed=False)
    return SimpleNamespace(**{**base, **over})


def test_a_job_per_seed_without_the_cache(tmp_path):
    m = Model("m", "/models/m", None, ["--pooling", "mean"])
    jobs, skipped = sweep_plan.plan([m], settings(tmp_path))
    assert skipped == [] and [job.seeds for job in jobs] == [[1], [2]]
    runs = tmp_path / "runs" / "m" / "cola"
    first = jobs[0]
    assert first.command == [sys.executable, SCRIPT, "--model_name_or_path", "/models/m", "--task_name", "cola",
                             "--do_train", "--do_eval", "--seed", "1", "--output_dir", str(runs / "seed1"),
                             "--pooling", "mean", "--num_train_epochs", "1"]
    assert (first.folders, first.log, first.redo, first.task, first.model) == (
        [runs / "seed1"], runs / "seed1" / "run.log", [], "cola", m)


def test_one_job_per_model_and_task_with_the_cache_and_the_tokenizer_and_data_named(tmp_path):
    m = Model("c", "/models/c", "/tok/c", [])
    s = settings(tmp_path, feature_cache="/cache", glue_dir="/glue", extra=[], seeds=[3, 1, 2])
    (job,) = sweep_plan.plan([m], s)[0]
    runs = tmp_path / "runs" / "c" / "cola"
    assert job.command == [sys.executable, SCRIPT, "--model_name_or_path", "/models/c", "--task_name", "cola",
                           "--do_train", "--do_eval", "--tokenizer_name", "/tok/c", "--glue_dir", "/glue",
                           "--feature_cache", "/cache", "--seeds", "3", "1", "2", "--output_dir", str(runs)]
    assert job.seeds == [3, 1, 2] and job.folders == [runs / "seed3", runs / "seed1", runs / "seed2"]
    assert job.log == runs / "run.log"


@pytest.mark.parametrize("gpus, tail", [(0, ["--use_cpu"]), (2, [])])
def test_the_deepspeed_launcher(tmp_path, gpus, tail):
    s = settings(tmp_path, uses_deepspeed=True, num_gpus=gpus, seeds=[4], extra=[])
    job = sweep_plan.make_job(Model("m", "/m", None, []), "rte", [(4, tmp_path / "f")], s, redo=[tmp_path / "f"])
    beside = Path(sys.executable).parent / "deepspeed"
    launcher = str(beside) if beside.exists() else "deepspeed"
    assert job.command == [launcher, "--num_gpus", str(max(gpus, 1)), "--master_port", "29511", SCRIPT,
                           "--model_name_or_path", "/m", "--task_name", "rte", "--do_train", "--do_eval", "--seed",
                           "4", "--output_dir", str(tmp_path / "f"), "--overwrite_output_dir", "--deepspeed",
                           "ds.json", *tail]
    assert job.redo == [tmp_path / "f"]


def complete(folder, protocol_hash="old", protocol=None):
    import json

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"protocol_hash": protocol_hash, "protocol": protocol or {
        "learning_rate": 1.0}}))
    (folder / "all_results.json").write_text("{}")


def test_a_complete_run_of_other_settings_is_refused_or_redone(tmp_path):
    m = Model("m", "/models/m", None, [])
    complete(tmp_path / "runs" / "m" / "cola" / "seed2")
    with pytest.raises(UserError) as refused:
        sweep_plan.plan([m], settings(tmp_path))
    message = str(refused.value)
    assert message.startswith(f"1 complete run(s) were made with another model, tokenizer, data or settings than "
                              f"this sweep's and would be mixed with new ones ({tmp_path / 'runs/m/cola/seed2'}: ")
    assert message.endswith("); REDO_CHANGED=1 redoes them, or choose another RUNS")
    jobs, skipped = sweep_plan.plan([m], settings(tmp_path, redo_changed=True))
    assert skipped == [] and [(j.seeds, j.redo) for j in jobs] == [([1], []), ([2], [tmp_path / "runs/m/cola/seed2"])]
    assert jobs[1].command[-1] == "--overwrite_output_dir" and "--overwrite_output_dir" not in jobs[0].command
    cached = sweep_plan.plan([m], settings(tmp_path, redo_changed=True, feature_cache="/c"))[0]
    assert [(j.seeds, j.redo) for j in cached] == [([1, 2], [tmp_path / "runs/m/cola/seed2"])]


def test_an_unparsable_model_is_named(tmp_path):
    complete(tmp_path / "runs" / "m" / "cola" / "seed1")
    with pytest.raises(UserError, match=r"^model m, task cola: "):
        sweep_plan.plan([Model("m", "/models/m", None, ["--no_such_flag"])], settings(tmp_path))


def test_the_zero_shot_job_rides_with_the_first_probe_of_a_causal_lm_only(tmp_path):
    import json

    lm, encoder = tmp_path / "lm", tmp_path / "enc"
    for folder, arch in ((lm, "GPT2LMHeadModel"), (encoder, "BertModel")):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"architectures": [arch]}))
    s = settings(tmp_path, zero_shot=True, tasks=["cola", "stsb"], seeds=[1])
    jobs = sweep_plan.plan([Model("g", str(lm), None, [])], s)[0]
    zs = tmp_path / "runs" / "g" / "cola" / "zeroshot"
    assert [j.task for j in jobs] == ["cola", "stsb"]  # no zero-shot job of its own; none for STS-B
    assert jobs[0].command[-1] == "--zero_shot" and jobs[0].folders[-1] == zs and "--zero_shot" not in jobs[1].command
    jobs = sweep_plan.plan([Model("e", str(encoder), "/tok", ["--x"])], s)[0]
    zero = [j for j in jobs if "--zero_shot" in j.command]
    assert len(jobs) == 3 and len(zero) == 1 and zero[0].seeds == []
    ze = tmp_path / "runs" / "e" / "cola" / "zeroshot"
    assert zero[0].command == [sys.executable, SCRIPT, "--model_name_or_path", str(encoder), "--task_name", "cola",
                               "--do_eval", "--zero_shot", "--output_dir", str(ze.parent), "--tokenizer_name", "/tok",
                               "--x", "--num_train_epochs", "1"]
    assert zero[0].folders == [ze] and zero[0].log == ze / "run.log"
    deep = sweep_plan.plan([Model("g", str(lm), None, [])], settings(tmp_path, zero_shot=True, seeds=[1],
                                                                       uses_deepspeed=True))[0]
    assert len(deep) == 2 and "--zero_shot" not in deep[0].command  # the launcher's job never takes it

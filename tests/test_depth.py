"""Pairs of different depth (issue 35): nothing pairs layers by index across depths. Known answer: a 4-block
RoBERTa against a copy of itself with its top 2 blocks dropped (the copy's layers are the original's lower
layers, read at the same first token): the layer x layer CKA matrix is 1 on the diagonal over the shared layers
0-2, the drift table holds one row, top against top, and the report draws the layer curves on relative depth."""

import argparse

import numpy as np
import pytest

from frozen_glue.config.models_file import read_models
from frozen_glue.demo import tiny
from frozen_glue.demo.families import build_family, drop_top_layers
from frozen_glue.report import drift, report


@pytest.fixture(scope="module")
def pair(script, tmp_path_factory):
    root = tmp_path_factory.mktemp("depth")
    teacher = build_family("RoBERTa", root / "teacher", layers=4)
    student = drop_top_layers(teacher, root / "student", keep=2)
    glue = tiny.write_glue_dir(root / "glue", n_train=40, n_dev=24, tasks=("sst2",))
    models = root / "models.tsv"
    models.write_text(f"teacher\t{teacher}\t-\nstudent\t{student}\t-\t\t-\tteacher\n")
    for alias, model in (("teacher", teacher), ("student", student)):
        assert script.main([str(a) for a in [
            "--model_name_or_path", model, "--task_name", "sst2", "--glue_dir", glue, "--output_dir",
            root / "runs" / alias / "sst2", "--do_train", "--do_eval", "--num_train_epochs", "1", "--seeds", "1", "2",
            "--per_device_train_batch_size", "8", "--disable_tqdm", "true", "--use_cpu", "true", "--feature_cache",
            root / "cache", "--probe_layers", "all"]]) == 0
    return root, models


def test_the_diagonal_over_the_shared_layers_is_one_and_nothing_pairs_by_index(pair):
    root, _ = pair
    teacher, student = read_models(root / "models.tsv")
    matrix = drift.cka_matrix(root / "cache", "sst2", teacher, student)
    assert list(matrix.index) == [0, 1, 2, 3, 4] and list(matrix.columns) == [0, 1, 2]
    assert np.allclose(np.diag(matrix.to_numpy()[:3, :3]), 1.0, atol=1e-6)
    assert matrix.loc[4, 2] < 0.999  # the teacher's top is not the student's top
    table = drift.layer_drift(root / "cache", "sst2", teacher, student)
    assert table[["layer", "derived_layer"]].values.tolist() == [[4, 2]]
    assert table["cka"].iloc[0] == pytest.approx(matrix.loc[4, 2])


def test_the_report_shows_the_matrix_and_relative_depth(pair, tmp_path):
    root, models = pair
    report.summarize(argparse.Namespace(runs=str(root / "runs"), out=str(tmp_path), reference=None,
                                        models=str(models), slice=[], n_resamples=50,
                                        feature_cache=str(root / "cache")))
    text = (tmp_path / "report.md").read_text()
    assert "teacher and student differ in depth" in text and "fig_layers_sst2_relative.png" in text
    assert (tmp_path / "drift_matrix_sst2_teacher_vs_student.csv").is_file()
    assert (tmp_path / "fig_drift_matrix_sst2_teacher_vs_student.png").is_file()
    assert (tmp_path / "fig_layers_sst2_relative.png").is_file()

"""--zero_shot_chat_template (issue 35): instruction-tuned pairs scored through the tokenizer's chat template by
lm-eval's own option. The protocol records it; a tokenizer without a template is refused in one line and nothing
is written; the report refuses a pair where only one model was scored with its template."""

import json
import shutil

import numpy as np
import pytest

from frozen_glue.core import layout
from frozen_glue.report import zeroshot_report

from conftest import one_error, run

pytest.importorskip("lm_eval")
TEMPLATE = "{% for m in messages %}<|user|> {{ m['content'] }}\n{% endfor %}<|assistant|>"


def zs_args(assets, model, out, *extra):
    return ["--model_name_or_path", model, "--task_name", "cola", "--glue_dir", assets["glue_dir"], "--output_dir",
            out, "--do_eval", "--zero_shot", "--use_cpu", "true", "--max_eval_samples", "12", *extra]


def test_the_chat_template_is_used_recorded_and_required(script, assets, tmp_path, capsys):
    from transformers import AutoTokenizer

    chat = shutil.copytree(assets["base"], tmp_path / "chat-model")
    tok = AutoTokenizer.from_pretrained(chat)
    tok.chat_template = TEMPLATE
    tok.save_pretrained(chat)
    code, _, err = run(script, capsys, *zs_args(assets, chat, tmp_path / "chat", "--zero_shot_chat_template"))
    assert code == 0, err
    folder = tmp_path / "chat" / "zeroshot"
    config = json.loads((folder / "config.json").read_text())
    assert config["protocol"]["chat_template"] is True and len(config["chat_template"]) == 16
    samples = [json.loads(line) for line in (folder / "samples_validation.jsonl").read_text().splitlines()]
    assert all("<|user|>" in str(s["arguments"]) for s in samples)  # the prompt went through the template
    code, _, err = run(script, capsys, *zs_args(assets, chat, tmp_path / "plain"))
    assert code == 0, err
    plain = json.loads((tmp_path / "plain" / "zeroshot" / "config.json").read_text())
    assert "chat_template" not in plain["protocol"] and plain["chat_template"] is None
    assert plain["protocol_hash"] != config["protocol_hash"]
    code, _, err = run(script, capsys, *zs_args(assets, assets["base"], tmp_path / "none", "--zero_shot_chat_template"))
    assert code == 2 and "has no chat template" in one_error(err)
    assert not (tmp_path / "none" / "zeroshot" / "config.json").exists()
    code, _, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "cola", "--output_dir",
                       tmp_path / "x", "--do_eval", "--zero_shot_chat_template")
    assert code == 2 and "applies to --zero_shot runs" in one_error(err)


def test_a_pair_scored_one_with_a_template_one_plainly_is_refused(tmp_path):
    for alias, chat in (("base", None), ("chat", "abcd")):
        for folder, preds, extra in ((tmp_path / alias / "sst2" / "seed1", [1, 0, 1, 0], {"probs": [0.5, 0.5]}),
                                     (tmp_path / alias / "sst2" / "zeroshot", [1, 1, 1, 0], {})):
            folder.mkdir(parents=True)
            layout.atomic_write_jsonl(folder / "predictions_validation.jsonl", [
                {"idx": i, "label": g, "prediction": p, "sentence": f"s{i}", **extra}
                for i, (g, p) in enumerate(zip([1, 0, 1, 0], preds))])
            layout.atomic_write_json(folder / "config.json", {"protocol": {"a": 1}, "protocol_hash": "h",
                                                              "prompt_hash": {"validation": "p"}, "chat_template": chat})
            layout.atomic_write_json(folder / "all_results.json", {"eval_accuracy": float(np.mean(preds))})
    models = tmp_path / "models.tsv"
    models.write_text("base\t/b\t-\nchat\t/c\t-\t\t-\tbase\n")
    lines = zeroshot_report.section(tmp_path, models, tmp_path, n_resamples=50)
    assert any("refused: base → chat" in line and "only chat was scored with its chat template" in line
               for line in lines), lines

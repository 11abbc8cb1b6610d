"""lm-eval's installed GLUE prompts, as zero-shot runs use them: the task yaml of a split (installed_yaml), its
template and answers (prompt_template; the demo teaches its tiny models this prompt), and the hashes a zero-shot
run records so that two models' scores are compared only when their prompts are one (prompt_hash, task_yaml_hash).
Must not score or load a model (zeroshot.py does)."""

import hashlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path


def lm_eval_version():
    return importlib.metadata.version("lm_eval")


def installed_yaml(task, split) -> Path:
    """lm-eval's own GLUE task file for a task's validation split (MNLI mismatched: its mismatch.yaml)."""
    root = Path(importlib.util.find_spec("lm_eval").submodule_search_locations[0]) / "tasks" / "glue" / task.name
    return root / ("mismatch.yaml" if split.endswith("_mismatched") else "default.yaml")


def task_name(task, split):
    return f"frozen_glue_{task.name}{task.metric_suffix(split)}"


def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: "!function " + loader.construct_scalar(node))
    return Loader


def _prompt_config(path: Path) -> dict:
    """An installed task yaml with its include: resolved (lm-eval's own rule: the including file wins)."""
    import yaml

    config = yaml.load(path.read_text(), _yaml_loader())
    if "include" in config:
        base = _prompt_config(path.parent / config.pop("include"))
        config = {**base, **config}
    return config


def prompt_template(task, split):
    """(doc_to_text template, choices) of lm-eval's installed prompt for a task (the demo teaches its tiny models
    this prompt)."""
    config = _prompt_config(installed_yaml(task, split))
    return config["doc_to_text"], config["doc_to_choice"]


def prompt_hash(task, split) -> str:
    """The prompt lm-eval renders for a task: its template fields, and the source of a !function template (MNLI),
    hashed. The same for every model: two models' zero-shot scores are comparable iff their prompt hashes are."""
    path = installed_yaml(task, split)
    config = _prompt_config(path)
    fields = {k: config.get(k) for k in ("doc_to_text", "doc_to_choice", "doc_to_target", "target_delimiter",
                                          "fewshot_delimiter", "description")}
    for key, value in fields.items():
        if isinstance(value, str) and value.startswith("!function "):
            module = value.split()[1].rsplit(".", 1)[0]
            fields[key] = {"function": value, "source": (path.parent / f"{module}.py").read_text()}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def task_yaml_hash(task) -> str:
    """sha256 of the installed task folder's files (yaml and any utils.py): what the prompts come from."""
    folder = installed_yaml(task, "validation").parent
    h = hashlib.sha256()
    for path in sorted(list(folder.glob("*.yaml")) + list(folder.glob("*.py"))):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]

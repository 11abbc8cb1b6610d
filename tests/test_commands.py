"""Every command shown in README.md and docs/*.md parses, without running a study.

Which lines are commands (the extraction rule):
- only lines inside fenced code blocks whose info string is empty, `bash`, `sh`, `shell` or `console`; a block
  tagged anything else (`text`, `tsv`, `python`, ...) holds no commands: put output samples and file contents there;
- a line ending in a backslash is joined to the next; a `# ...` comment is dropped;
- a line is a command when, after optional leading environment assignments (`NAME=value`, NAME in capitals), its
  first word is `python`, `make`, `deepspeed`, `torchrun`, or `bash` followed by a `launch/` script. Every other
  line (a comment, `export ...`, `n=$((...))`, `sbatch ...`) is not one.

How each is checked (a command that none of these rules fits fails, naming its file and line):
- `python SCRIPT` / `python -m MODULE`: the project's SCRIPT (or MODULE) exits 0 with `--help`, and every `--flag` on
  the line appears in that help. A `run_glue_frozen.py` line is also parsed and validated by the run's own parser
  (arguments.parse_args), where `...` stands for the flags of a minimal run that the line lacks
  (`--model_name_or_path --task_name --do_train --do_eval --output_dir`), a lone `args.json` for a file of those
  flags, and `$COMET_DIR` / `$COMET_TOKENIZER_DIR` for a tiny COMET-style model; on a machine without a GPU,
  a line with `--bf16` (a GPU setting) is parsed with `--use_cpu true` added.
- `torchrun ...` / `deepspeed ...`: the launcher's own flags appear in its `--help`; the script's part is checked
  as a `python` line.
- `bash launch/all_tasks.sh`: the sweep runs dry (DRY_RUN=1) and exits 0, in this process, with the line's
  environment over a tiny offline setup (MODELS: a tiny GPT-2 and its COMET-style descendant; RUNS in a temporary
  folder; no GLUE_DIR unless the line sets one; HF_HUB_OFFLINE=1). A line with `GPUS=` on a machine that lacks
  those GPUs must be refused in the one line that names the machine's GPUs, and runs again dry with as many
  `JOBS=` instead.
- `make TARGET ...`: `make -n TARGET ...` exits 0 (the target exists; nothing runs).
"""

import io
import os
import re
import runpy
import shlex
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from conftest import ROOT

SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}
FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")
MINIMAL_RUN = {"--model_name_or_path": ["gpt2"], "--task_name": ["cola"], "--do_train": [], "--do_eval": [],
               "--output_dir": ["runs/docs-example"]}
FLAG = re.compile(r"(?<![\w-])(--[A-Za-z][\w-]*)")


def doc_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def code_lines(text):
    """(line number, logical line) of every line in a shell code block, continuations joined."""
    fence, tag, pending, start = None, None, "", 0
    for n, line in enumerate(text.splitlines(), start=1):
        m = FENCE.match(line)
        if m and (fence is None or m.group(1) == fence):
            fence, tag = (m.group(1), m.group(2).lower()) if fence is None else (None, None)
            pending = ""
            continue
        if fence is None or tag not in SHELL_BLOCKS:
            continue
        if not pending:
            start = n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, (pending + line).strip()
        pending = ""


def classify(line):
    """(kind, environment, words) of a command line, or None when the line is not a command."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # unbalanced quotes: only a command line that starts like one is an error
        words = line.split()
    env = {}
    while words and ENV.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words:
        return None
    first = words[0]
    if first in ("python", "python3"):
        return "python", env, words
    if first in ("make", "deepspeed", "torchrun"):
        return first, env, words
    if first == "bash" and len(words) > 1 and words[1].startswith("launch/"):
        return "bash", env, words
    return None


def commands():
    found = []
    for path in doc_files():
        for n, line in code_lines(path.read_text()):
            kind = classify(line)
            if kind:
                found.append(pytest.param(line, *kind, id=f"{path.relative_to(ROOT)}:{n}"))
    return found


COMMANDS = commands()


# ----------------------------------------------------------------------------------------- --help, once each


def entry_point(words, where=""):
    """(label, how to run it) of a python line's entry point; a missing script fails here, naming `where`."""
    if words[1] == "-m":
        return words[2], ("module", words[2])
    script = ROOT / words[1]
    assert script.is_file(), f"{where}: {words[1]}: no such script in the project"
    return words[1], ("path", str(script))


def launcher(name):
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


@pytest.fixture(scope="module")
def helps(tmp_path_factory):
    """`--help` of an entry point, run once each: (exit code, output). Python entry points run in this process, as
    `python SCRIPT --help` would run them (they share its imports of torch and transformers, seconds each), in an
    empty folder (an entry point that took --help for an argument would write there); launchers in a subprocess."""
    cwd, done = tmp_path_factory.mktemp("help"), {}

    def run(key, how):
        if key in done:
            return done[key]
        if how[0] == "launcher":
            proc = subprocess.run([launcher(how[1]), "--help"], capture_output=True, text=True, timeout=120)
            done[key] = (proc.returncode, proc.stdout + proc.stderr)
            return done[key]
        capture = pytest.MonkeyPatch()
        out, err = io.StringIO(), io.StringIO()
        try:
            capture.chdir(cwd)
            capture.setattr(sys, "argv", [how[1], "--help"])
            capture.setattr(sys, "stdout", out)
            capture.setattr(sys, "stderr", err)
            try:
                (runpy.run_module if how[0] == "module" else runpy.run_path)(how[1], run_name="__main__")
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except Exception:  # noqa: BLE001 - a crash, as `python SCRIPT --help` would show it: exit 1
                code = 1
                err.write(traceback.format_exc())
        finally:
            capture.undo()
        done[key] = (code, out.getvalue() + err.getvalue())
        return done[key]

    return run


def check_help(helps, words, where):
    """The entry point's --help exits 0 and names every flag of the line."""
    key, how = entry_point(words, where)
    code, out = helps(key, how)
    assert code == 0, f"{where}: `{key} --help` exited {code}:\n{out[-2000:]}"
    unknown = [f for f in FLAG.findall(" ".join(words[2:])) if not re.search(rf"(?<![\w-]){f}(?![\w-])", out)]
    assert not unknown, f"{where}: {key} has no {', '.join(unknown)} (not in its --help)"


# ----------------------------------------------------------------------------------------- tiny offline setup


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from frozen_glue.demo import tiny as build

    root = tmp_path_factory.mktemp("commands")
    base = build.build_base_gpt2(root / "models" / "gpt2")
    comet, comet_tok = build.build_comet_style(base, root / "models" / "comet", root / "tokenizers" / "comet", steps=0)
    models = root / "models.tsv"
    models.write_text(f"gpt2\t{base}\t-\t\tgpt2-xl\t-\ncomet\t{comet}\t{comet_tok}\t\tcomet-distil\tgpt2\n")
    return {"root": root, "models": models, "COMET_DIR": str(comet), "COMET_TOKENIZER_DIR": str(comet_tok)}


def expand(word, tiny):
    return re.sub(r"\$\{?(COMET_DIR|COMET_TOKENIZER_DIR)\}?", lambda m: tiny[m.group(1)], word)


def run_arguments(args, tiny):
    """A run_glue_frozen.py line's arguments, its placeholders filled (see the module docstring)."""
    args = [expand(a, tiny) for a in args]
    if args == ["args.json"]:
        path = tiny["root"] / "args.json"
        path.write_text('{"model_name_or_path": "gpt2", "task_name": "cola", "do_train": true, "do_eval": true, '
                        '"output_dir": "runs/docs-example"}')
        return [str(path)]
    if "..." in args:
        fill = [w for flag, value in MINIMAL_RUN.items() if flag not in args for w in (flag, *value)]
        i = args.index("...")
        args = args[:i] + fill + [a for a in args[i + 1:] if a != "..."]
    if "--bf16" in args and "--use_cpu" not in args:
        import torch

        if not torch.cuda.is_available():  # TrainingArguments refuses bf16 on a CPU unless told it is one
            args += ["--use_cpu", "true"]
    return args


def check_run_line(args, tiny, where):
    from frozen_glue.config.arguments import parse_args
    from frozen_glue.core.errors import UserError

    try:
        parse_args(run_arguments(args, tiny))
    except UserError as e:
        pytest.fail(f"{where}: run_glue_frozen.py refuses it: {e}")


# ----------------------------------------------------------------------------------------- the sweep, dry


SWEEP_SETTINGS = ("MODELS", "TASKS", "SEEDS", "RUNS", "GLUE_DIR", "NUM_GPUS", "GPUS", "JOBS", "DS_CONFIG", "LAUNCHER",
                  "FEATURE_CACHE", "EXTRA_ARGS", "REDO_CHANGED", "ZERO_SHOT", "PROTOCOL", "DRY_RUN")


def dry_sweep(env, args, tiny, monkeypatch, capsys):
    """(exit code, output) of the sweep run dry in this process, as launch/all_tasks.sh runs it (its entry point in
    pyproject.toml), with `env` over the tiny setup."""
    import importlib
    import tomllib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["frozen-glue-sweep"]
    module, _, function = target.partition(":")
    main = getattr(importlib.import_module(module), function)
    with monkeypatch.context() as m:
        for name in SWEEP_SETTINGS:
            m.delenv(name, raising=False)
        setup = {"MODELS": str(tiny["models"]), "RUNS": str(tiny["root"] / "runs"), "HF_HUB_OFFLINE": "1",
                 "COMET_DIR": tiny["COMET_DIR"], "COMET_TOKENIZER_DIR": tiny["COMET_TOKENIZER_DIR"]}
        for name, value in {**setup, **env, "DRY_RUN": "1"}.items():
            m.setenv(name, expand(value, tiny))
        m.chdir(ROOT)
        capsys.readouterr()
        code = main([expand(a, tiny) for a in args])
        out = capsys.readouterr()
    return code, out.out + out.err


def check_sweep(env, words, tiny, monkeypatch, capsys, where):
    assert words[1] == "launch/all_tasks.sh", f"{where}: no dry-run check for {words[1]}; add one to this test"
    code, out = dry_sweep(env, words[2:], tiny, monkeypatch, capsys)
    gpus = env.get("GPUS", "").replace(",", " ").split()
    if gpus and code == 2 and re.search(r"^error: GPUS=.*this machine has", out, re.M):
        # the machine lacks those GPUs: refused in one line; the rest of the line checked with as many workers
        assert out.strip().splitlines()[-1].startswith("error: GPUS="), f"{where}:\n{out}"
        env = {**{k: v for k, v in env.items() if k != "GPUS"}, "JOBS": str(len(gpus))}
        code, out = dry_sweep(env, words[2:], tiny, monkeypatch, capsys)
    assert code == 0, f"{where}: the sweep, dry, exited {code}:\n{out[-3000:]}"
    assert "dry run:" in out, f"{where}: the sweep did not plan:\n{out[-3000:]}"


# ----------------------------------------------------------------------------------------- the test


@pytest.mark.parametrize("line, kind, env, words", COMMANDS)
def test_every_documented_command_parses(line, kind, env, words, helps, tiny, monkeypatch, capsys, request):
    where = f"{request.node.callspec.id}: {line}"
    if kind == "python":
        check_help(helps, words, where)
        if Path(words[1]).name == "run_glue_frozen.py":
            check_run_line(words[2:], tiny, where)
    elif kind in ("torchrun", "deepspeed"):
        scripts = [i for i, w in enumerate(words) if w.endswith(".py")]
        assert scripts, f"{where}: {kind} runs no script"
        i = scripts[0]
        code, out = helps(kind, ("launcher", kind))
        assert code == 0, f"{where}: `{kind} --help` exited {code}:\n{out[-2000:]}"
        unknown = [f for f in FLAG.findall(" ".join(words[1:i])) if f not in out]
        assert not unknown, f"{where}: {kind} has no {', '.join(unknown)}"
        check_help(helps, ["python", *words[i:]], where)
        if Path(words[i]).name == "run_glue_frozen.py":
            check_run_line(words[i + 1:], tiny, where)
    elif kind == "bash":
        check_sweep(env, words, tiny, monkeypatch, capsys, where)
    elif kind == "make":
        proc = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env})
        assert proc.returncode == 0, f"{where}: make -n exited {proc.returncode}:\n{proc.stderr[-2000:]}"
    else:  # classify() and this test must agree on the kinds
        pytest.fail(f"{where}: no check for a {kind} command; add one to this test")


def test_the_docs_show_every_kind_of_command():
    """The extraction finds what the README shows (a rule that silently matched nothing would pass every line)."""
    shown = {(param.id.split(":")[0], param.values[1]) for param in COMMANDS}
    assert {("README.md", kind) for kind in ("python", "make", "bash")} <= shown
    assert any(Path(p.values[3][1]).name == "run_glue_frozen.py" for p in COMMANDS if p.values[1] == "python")


@pytest.mark.parametrize("text, expected", [
    ("```bash\nFOO=1 make demo   # a comment\n```", [(2, "make", {"FOO": "1"}, ["make", "demo"])]),
    ("```\npython a.py \\\n    --x 1\n```", [(2, "python", {}, ["python", "a.py", "--x", "1"])]),
    ("```text\npython a.py\n```", []),  # an output sample: not a command
    ("```bash\nexport A=1\nsbatch x.sh\n# python a.py\n```\npython b.py", []),
    ("  ```bash\n  bash launch/all_tasks.sh\n  ```", [(2, "bash", {}, ["bash", "launch/all_tasks.sh"])]),
])
def test_the_extraction_rule(text, expected):
    assert [(n, *classify(line)) for n, line in code_lines(text) if classify(line)] == expected

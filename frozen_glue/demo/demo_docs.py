"""The demo's figures in the README and docs/analysis.md (and the list of tested model families in the README and
docs/flags.md, from demo/families.py's FAMILIES), written from a `make demo` report folder so that they cannot go
stale: each figure sits between `<!-- demo:NAME -->` and `<!-- /demo:NAME -->` in its doc, and
`blocks(reports)` renders every NAME from the report's own files (summary.md, disagreements.csv, slices_sst2.csv,
drift_sst2.csv, summary_information.csv). `make demo` checks the docs against its fresh run and prints one line
where they differ; `python -m frozen_glue.demo.demo_docs demo/reports --write` (make demo-docs) rewrites them; a test
runs the demo and checks them. Reads report files only."""

import re
from pathlib import Path

import pandas as pd

from frozen_glue.core.errors import ArgumentParser, UserError, run_cli
from frozen_glue.core.layout import atomic_write_bytes
from frozen_glue.core.provenance import PROJECT_ROOT
from frozen_glue.demo.families import FAMILIES

DOCS = ("README.md", "docs/analysis.md", "docs/flags.md")  # the files that hold demo figures (and the family list)
BLOCK = re.compile(r"(<!-- demo:(?P<name>[a-z0-9_]+) -->\n)(?P<body>.*?)(\n<!-- /demo:(?P=name) -->)", re.S)
BASE, DERIVED, CONTROL = "tiny-gpt2", "tiny-comet", "tiny-random"


def _read(reports: Path, name: str) -> pd.DataFrame:
    path = reports / name
    if not path.is_file():
        raise UserError(f"{path} is missing: run `make demo` first (the demo's figures come from its report)")
    return pd.read_csv(path)


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


def _score(summary: pd.DataFrame, task: str, model: str) -> str:
    """'mean ± std' of one model's main metric on one task, from summary.csv."""
    row = summary[summary.task == task].iloc[0]
    return f"{row[f'{model}_mean']:.3f} ± {row[f'{model}_std']:.3f}"


def families_block() -> str:
    """The families the cached path is tested on, from the test's own list (families.FAMILIES), never by hand."""
    return ("Tested on both paths, cached = Trainer at the top layer, `--probe_layers all` on the cached path "
            f"(tests/test_families.py, tiny random models built offline): {', '.join(FAMILIES)}.")


def blocks(reports) -> dict:
    """{block name: its markdown}, every number from the demo's report folder (and the family list)."""
    reports = Path(reports)
    summary = _read(reports, "summary.csv")
    verdicts = _read(reports, "disagreements.csv")
    v = verdicts[(verdicts.task == "sst2") & (verdicts.split == "validation")
                 & (verdicts[["model_a", "model_b"]].apply(frozenset, axis=1) == frozenset({BASE, DERIVED}))].iloc[0]
    # disagreements.csv states model_a - model_b; the docs state tiny-comet - base
    flip = 1 if v["model_a"] == DERIVED else -1
    low, high = sorted((flip * v["ci_low"], flip * v["ci_high"]))
    only_base = v["only_b_right"] if flip == 1 else v["only_a_right"]
    only_derived = v["only_a_right"] if flip == 1 else v["only_b_right"]
    slices = _read(reports, f"slices_sst2_{v['model_a']}_vs_{v['model_b']}.csv")
    negation = slices[slices["slice"] == "negation"].iloc[0]
    ckas = [f"{c:.2f}" for c in _read(reports, "drift_sst2.csv").sort_values("layer")["cka"]]
    info = _read(reports, "summary_information.csv")
    info = info[info.task == "sst2"].set_index("model")
    table = [line for line in (reports / "summary.md").read_text().splitlines() if line.startswith("|")]

    def measure(model, name, digits=2):
        return f"{info.loc[model, f'{name}_mean']:.{digits}f}"

    return {
        "families": families_block(),
        "summary": "\n".join(table),
        "sst2": (
            f"Both models score {_score(summary, 'cola', BASE).split(' ±')[0]} on CoLA, where no row holds \"nothing\"; "
            f"on SST-2 the base scores {_score(summary, 'sst2', BASE)} and tiny-comet {_score(summary, 'sst2', DERIVED)}"
            f" (verdict: {v['verdict']}, {flip * v['difference']:+.3f} for tiny-comet, {v['ci_level']:.2%} CI at the "
            f"Holm level [{low:+.3f}, {high:+.3f}]; {only_base} examples only the base "
            f"gets right, {only_derived} the other way, McNemar {_p(v['test_p'])}), and on the negation slice the base "
            f"scores {negation[f'score_{BASE}']:.3f} and tiny-comet {negation[f'score_{DERIVED}']:.3f} (Holm-corrected "
            f"{_p(negation['p_holm'])}). Drift (CKA of tiny-comet against the base on SST-2, embeddings first): "
            f"{' → '.join(ckas)}."),
        "information": (
            f"On the demo's SST-2 the base's top layer compresses the labels {measure(BASE, 'compression', 1)}× and "
            f"its random-init control {measure(CONTROL, 'compression', 1)}×, with V-information "
            f"{measure(BASE, 'v_information_bits')} and {measure(CONTROL, 'v_information_bits')} bits; tiny-comet, "
            f"which cannot read \"nothing\", {measure(DERIVED, 'compression', 1)}×, selectivity "
            f"{measure(DERIVED, 'selectivity')} (the base: {measure(BASE, 'selectivity')}), "
            f"{measure(DERIVED, 'v_information_bits')} bits."),
    }


def stale(reports, root=PROJECT_ROOT, want=None) -> list:
    """[(doc, block name)] of every demo block whose text differs from `want` (default: `blocks(reports)`); a block
    name no renderer knows is refused."""
    want, out = want or blocks(reports), []
    for doc in DOCS:
        for m in BLOCK.finditer((Path(root) / doc).read_text()):
            if m["name"] not in want:
                raise UserError(f"{doc}: demo block {m['name']!r} has no renderer in frozen_glue/demo/demo_docs.py")
            if m["body"] != want[m["name"]]:
                out.append((doc, m["name"]))
    return out


def write(reports, root=PROJECT_ROOT) -> list:
    """Rewrite every demo block of the docs from `reports` (atomically); the (doc, name) pairs it changed."""
    want = blocks(reports)
    changed = stale(reports, root, want)
    for doc in {d for d, _ in changed}:
        path = Path(root) / doc
        atomic_write_bytes(path, BLOCK.sub(lambda m: m[1] + want[m["name"]] + m[4], path.read_text()).encode())
    return changed


def main(argv=None):
    ap = ArgumentParser(description="Check (default) or --write the demo figures in the README and docs against a "
                                    "`make demo` report folder.")
    ap.add_argument("reports", nargs="?", default="demo/reports", help="the demo's report folder")
    ap.add_argument("--write", action="store_true", help="rewrite the docs' demo blocks from this report")
    args = ap.parse_args(argv)
    if args.write:
        changed = write(args.reports)
        print(f"demo figures: {len(changed)} block(s) rewritten" + "".join(f"\n  {d}: {n}" for d, n in changed))
        return 0
    old = stale(args.reports)
    if old:
        print(f"note: the docs' demo figures differ from this run ({', '.join(f'{d}:{n}' for d, n in old)}); "
              f"`make demo-docs` rewrites them")
    else:
        print("demo figures in the docs: equal to this run")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

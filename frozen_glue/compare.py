"""Example-level comparison of two models on one task: where they disagree, whether the difference is more than
noise (the primary test: a bootstrap over dev examples and seeds together; exact McNemar or Wilcoxon on the
seed-majority predictions beside it), the verdict in words after Holm's correction across a report's comparisons,
and on which slices (length, negation, past tense, user regexes; Holm-corrected). Must not write files or find runs itself
(layout.iter_runs does)."""

import json
import re

import numpy as np
import pandas as pd

from .errors import UserError
from .layout import counted, iter_runs, predictions_file
from .metrics import get_metric
from .stats import hierarchical_bootstrap, holm, mcnemar_exact, paired_bootstrap, wilcoxon_p
from .tasks import get_task


def read_predictions(runs_root, model, task, split, seed=None):
    """One model's predictions on a split, indexed by idx, from its complete runs only (layout.iter_runs): one
    seed, or all its seeds combined (majority vote of classes, ties to the lowest class id; mean score for
    STS-B). attrs: `per_seed` (seeds x examples, for the hierarchical bootstrap; one row for a deterministic probe),
    `seeds`, `config` (the first run's) and `collapsed` (how many of the runs' heads collapsed). Runs of different
    identities are refused, not combined."""
    task = get_task(task)
    name = predictions_file(split)
    runs, skipped = iter_runs(runs_root, model=model, task=task.name)
    runs = [r for r in runs if (seed is None or r.seed == seed) and (r.folder / name).exists()]
    if not runs:
        which = f"model {model} on {task.name}" + (f" seed {seed}" if seed is not None else "")
        raise UserError(f"no complete run with {name} for {which} under {runs_root}"
                        + (f" ({len(skipped)} incomplete run(s) skipped)" if skipped else ""))
    if len({r.identity_hash for r in runs}) > 1:
        raise UserError(f"the {task.name} runs of {model} have different identities (settings, model, tokenizer or "
                        f"data); compare one seed (--seed) or redo the others with the same ones")
    runs = list(counted(runs))  # a deterministic probe's seeds are one fit: one run
    files = [r.folder / name for r in runs]
    frames = [pd.read_json(f, lines=True).set_index("idx") for f in files]
    first = frames[0]
    for f, frame in zip(files[1:], frames[1:]):
        if not frame.index.equals(first.index) or not frame["label"].equals(first["label"]):
            raise UserError(f"{f} holds other examples than {files[0]}: runs of {model} used different data")
    out = first.drop(columns=[c for c in ("probs", "score", "pvi") if c in first.columns]).copy()
    preds = np.stack([fr["prediction"].to_numpy() for fr in frames])
    if task.is_regression:
        out["prediction"] = preds.mean(0)
    else:
        out["prediction"] = [np.bincount(col.astype(int)).argmax() for col in preds.T]
        out["probs"] = list(np.mean([np.stack(fr["probs"].to_numpy()) for fr in frames], axis=0).round(4).tolist())
    if all("pvi" in fr.columns for fr in frames):  # mean bits over seeds (null, NaN here, for STS-B)
        out["pvi"] = np.mean([fr["pvi"].to_numpy(dtype=float) for fr in frames], axis=0)
    out.attrs.update(per_seed=preds, seeds=[f.parent.name for f in files], config=runs[0].config,
                     protocol=runs[0].protocol, collapsed=sum(bool(r.results.get("head_collapsed")) for r in runs))
    return out


def join(a: pd.DataFrame, b: pd.DataFrame, names=("A", "B")):
    """Join two models' predictions on idx; refuse when they are not the same examples with the same gold."""
    if set(a.index) != set(b.index):
        only = len(set(a.index) ^ set(b.index))
        raise UserError(f"the prediction files of {names[0]} and {names[1]} cover different examples ({only} idx "
                        f"in one only): they were run on different data, compare runs of the same data")
    b = b.loc[a.index]
    if not np.allclose(a["label"].to_numpy(dtype=float), b["label"].to_numpy(dtype=float)):
        raise UserError(f"{names[0]} and {names[1]} disagree on gold labels for the same idx: different data")
    return a, b


def disagreement(task_name, a, b, names, n_resamples=2000):
    """One pair on one split: the primary test (stats.hierarchical_bootstrap over dev examples and both models'
    seeds: difference of the seed-mean main metric, CI, p), McNemar (classification) or Wilcoxon (STS-B) on the
    seed-majority predictions beside it, how many collapsed heads each side has; plus the table of disagreeing
    examples. `verdicts` then corrects the p-values across a report's comparisons and words them."""
    task = get_task(task_name)
    raw_a, raw_b, b_index = a.attrs.get("per_seed"), b.attrs.get("per_seed"), b.index
    dead = a.attrs.get("collapsed", 0), b.attrs.get("collapsed", 0)
    a, b = join(a, b, names)  # b's rows now in a's order: so must its per-seed columns be
    gold = a["label"].to_numpy()
    pa, pb = a["prediction"].to_numpy(), b["prediction"].to_numpy()
    seeds_a = raw_a if raw_a is not None else pa[None]
    seeds_b = raw_b[:, b_index.get_indexer(a.index)] if raw_b is not None else pb[None]
    metric = task.main_metric
    diff, low, high, p = hierarchical_bootstrap(metric, seeds_a, seeds_b, gold, n_resamples=n_resamples)
    result = {"task": task.name, "model_a": names[0], "model_b": names[1], "n": len(gold),
              "seeds_a": len(seeds_a), "seeds_b": len(seeds_b), "metric": metric, "difference": diff,
              "ci_low": low, "ci_high": high, "p": p,
              "collapsed_a": dead[0], "collapsed_b": dead[1]}
    text_cols = list(task.text_keys)
    table = pd.DataFrame({"idx": a.index, **{c: a[c].to_numpy() for c in text_cols}, "gold": gold,
                          f"pred_{names[0]}": pa, f"pred_{names[1]}": pb})
    if task.is_regression:
        # STS-B: which model is closer to the gold score, example by example, and a Wilcoxon signed-rank test
        # of the paired absolute errors (McNemar's counterpart for scores)
        ea, eb = np.abs(pa - gold), np.abs(pb - gold)
        disagree = np.abs(pa - pb) > STSB_DISAGREE
        result.update(a_better=int(np.sum(ea < eb)), b_better=int(np.sum(eb < ea)), disagree=int(np.sum(disagree)),
                      test="Wilcoxon signed-rank, |error|", test_p=wilcoxon_p(ea, eb))
    else:
        ra, rb = pa == gold, pb == gold
        counts = {"both_right": int(np.sum(ra & rb)), "only_a_right": int(np.sum(ra & ~rb)),
                  "only_b_right": int(np.sum(~ra & rb)), "both_wrong": int(np.sum(~ra & ~rb))}
        mc = mcnemar_exact(counts["only_a_right"], counts["only_b_right"])
        result.update(counts, disagree=int(np.sum(pa != pb)), mcnemar_p=mc, a_better=counts["only_a_right"],
                      b_better=counts["only_b_right"], test="exact McNemar", test_p=mc)
        table[f"probs_{names[0]}"] = [json.dumps(p) for p in a["probs"]]
        table[f"probs_{names[1]}"] = [json.dumps(p) for p in b["probs"]]
        disagree = pa != pb
    return result, table[disagree].reset_index(drop=True)


STSB_DISAGREE = 1.0  # STS-B: two models disagree on a pair when their scores are more than one point apart (0-5)
ALPHA = 0.05


def verdicts(comparisons: pd.DataFrame, alpha=ALPHA) -> pd.DataFrame:
    """The report's family of comparisons (disagreement results, one row per task x split x pair) with the primary
    p Holm-corrected across all of them (`p_holm`) and a verdict in words: '<A> better' / '<B> better' when the
    corrected p < alpha (the direction: the metric's better side), else 'no evidence of a difference'. A side with
    collapsed heads gets that said, since its score is no evidence about the model."""
    out = comparisons.copy()
    out["p_holm"] = holm(out["p"])
    words = []
    for _, row in out.iterrows():
        if not row["p_holm"] < alpha:
            verdict = "no evidence of a difference"
        else:
            a_wins = get_metric(row["metric"]).better(row["difference"], 0)
            verdict = f"{row['model_a'] if a_wins else row['model_b']} better"
        dead = [m for m, c in ((row["model_a"], row.get("collapsed_a", 0)), (row["model_b"], row.get("collapsed_b", 0)))
                if c]
        words.append(verdict + (f" (collapsed heads: {', '.join(dead)})" if dead else ""))
    out["verdict"] = words
    return out


def verdict_sentence(row) -> str:
    """'sst2: tiny-base better than tiny-comet (accuracy +0.047, 95% CI [+0.021, +0.074], Holm p = 0.002).'"""
    where = row["task"] + (f" ({row['split']})" if row.get("split", "validation") != "validation" else "")
    stats_text = (f"{row['metric']} {row['difference']:+.3f}, 95% CI [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}], "
                  f"Holm-corrected p = {row['p_holm']:.3g}")
    if row["verdict"].startswith("no evidence"):
        return f"{where}: {row['model_a']} vs {row['model_b']}: {row['verdict']} ({stats_text})."
    return f"{where}: {row['verdict']} ({row['model_a']} − {row['model_b']}: {stats_text})."


def bits_lost(task_name, base, derived, names):
    """Example by example, the pointwise V-information (`pvi`, bits, mean over seeds) the derived model lost
    against its base: pvi(base) - pvi(derived), most lost first, with the texts. Empty for STS-B (no PVI) and for
    runs written before PVI existed."""
    task = get_task(task_name)
    base, derived = join(base, derived, names)
    columns = ["idx", *task.text_keys, "gold", f"pvi_{names[0]}", f"pvi_{names[1]}", "bits_lost"]
    if "pvi" not in base.columns or "pvi" not in derived.columns or task.is_regression:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame({"idx": base.index, **{c: base[c].to_numpy() for c in task.text_keys},
                          "gold": base["label"].to_numpy(), f"pvi_{names[0]}": base["pvi"].to_numpy(),
                          f"pvi_{names[1]}": derived["pvi"].to_numpy()})
    table["bits_lost"] = table[f"pvi_{names[0]}"] - table[f"pvi_{names[1]}"]
    return table[columns].sort_values("bits_lost", ascending=False, kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------------ slices

NEGATION = re.compile(r"\b(not|no|never|nobody|nothing|none|neither|nor|nowhere|cannot)\b|n't\b", re.I)
WORD = re.compile(r"[A-Za-z']+")
LENGTH_BUCKETS = ((1, 5), (6, 10), (11, 20), (21, 10_000))
# The past-tense slice. A sentence is past tense when a finite verb in it is in the simple past, or it has
# was/were/had/did. Present perfect ("has walked"), present passive ("is parked"), participial adjectives ("a used
# car", "seems tired") and modals ("would have walked") are not. spaCy's tagger decides when an English model is
# installed; otherwise this rule does, on lemminflect's inflection tables plus the word before the verb form.
_AUX_PAST = {"was", "were", "had", "did", "wasn't", "weren't", "hadn't", "didn't"}
_MODALS = {"will", "would", "shall", "should", "can", "could", "may", "might", "must"}
# before a form that is both past tense and participle, these make it a participle or an adjective
_NOT_FINITE_BEFORE = _MODALS | {
    "is", "are", "am", "be", "been", "being", "'s", "'re", "has", "have", "having", "'ve", "get", "gets", "getting",
    "seem", "seems", "look", "looks", "feel", "feels", "become", "becomes", "remain", "remains", "appear", "appears",
    "a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our", "their", "some",
    "no", "every", "each", "any", "very", "so", "too", "newly", "well"}
PAST_TENSE_RULE = ("rule: lemminflect inflection tables (past forms that are not also present forms) and the word "
                   "before a past-or-participle form (be/have/get, a linking verb, a modal or a determiner make it "
                   "a participle or an adjective)")


def _spacy_tagger():
    """spaCy's English tagger when a model is installed (en_core_web_sm), else None."""
    try:
        import spacy

        return spacy.load("en_core_web_sm", disable=["parser", "ner", "lemmatizer"])
    except Exception:  # noqa: BLE001 - no spaCy, or no English model: the rule decides
        return None


_TAGGER = []


def past_tense_method() -> str:
    """Which method the past-tense slice uses here (the report names it)."""
    if not _TAGGER:
        _TAGGER.append(_spacy_tagger())
    return "spaCy en_core_web_sm tagger (VBD, or a past auxiliary)" if _TAGGER[0] else PAST_TENSE_RULE


def is_past_tense(text: str) -> bool:
    """Past tense as defined above: by spaCy's tagger when available, else by the rule."""
    if past_tense_method() != PAST_TENSE_RULE:
        return any(t.tag_ == "VBD" or t.lower_ in _AUX_PAST for t in _TAGGER[0](text))
    from lemminflect import getAllInflections, getAllLemmas

    words = WORD.findall(text.lower())
    for i, word in enumerate(words):
        if word in _AUX_PAST:
            return True
        if word in _MODALS:  # 'should' is shall's past form in the tables, but a modal here
            continue
        for lemma in getAllLemmas(word, upos="VERB").get("VERB", ()):
            forms = getAllInflections(lemma, upos="VERB")
            present = set(forms.get("VB", ())) | set(forms.get("VBP", ())) | set(forms.get("VBZ", ()))
            if word not in forms.get("VBD", ()) or word in present:  # drops ambiguous 'read', 'put', 'cut'
                continue
            if word not in (forms.get("VBN") or forms.get("VBD", ())):  # regular verbs: the tables list no VBN
                return True  # a form only the past tense has: 'went', 'ate', 'wrote'
            before = [w for w in words[:i] if not w.endswith("ly")][-1:]  # skipping adverbs: 'quickly closed'
            if before and before[0] in _NOT_FINITE_BEFORE:
                continue
            after = words[i + 1:i + 2]
            if not before and after and getAllLemmas(after[0], upos="NOUN"):
                continue  # 'Used cars are ...': a sentence-initial participle before a noun is an adjective
            return True
    return False




def slice_masks(texts, user_slices=()):
    """{slice name: boolean mask} for the built-in slices and `name=REGEX` user slices."""
    texts = list(texts)
    lengths = np.array([len(WORD.findall(t)) for t in texts])
    masks = {f"length {lo}-{hi}" if hi < 10_000 else f"length {lo}+": (lengths >= lo) & (lengths <= hi)
             for lo, hi in LENGTH_BUCKETS}
    masks["negation"] = np.array([bool(NEGATION.search(t)) for t in texts])
    masks["past tense"] = np.array([is_past_tense(t) for t in texts])
    for spec in user_slices:
        name, _, pattern = spec.partition("=")
        if not name or not pattern:
            raise UserError(f"--slice {spec!r}: write it as name=REGEX, e.g. --slice 'question=\\?$'")
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise UserError(f"--slice {spec!r}: bad regex ({e})") from None
        masks[name] = np.array([bool(rx.search(t)) for t in texts])
    return masks


def slices(task_name, a, b, names, user_slices=(), min_size=10, n_resamples=1000):
    """Per-slice main metric of each model and a bootstrap CI of the difference; Holm-adjusted p, with the
    significant slices first."""
    task = get_task(task_name)
    a, b = join(a, b, names)
    texts = [" ".join(str(a[k].iloc[i]) for k in task.text_keys) for i in range(len(a))]
    gold, pa, pb = a["label"].to_numpy(), a["prediction"].to_numpy(), b["prediction"].to_numpy()
    rows = []
    for name, mask in slice_masks(texts, user_slices).items():
        n = int(mask.sum())
        if n < min_size:
            rows.append({"slice": name, "n": n, "note": f"fewer than {min_size} examples"})
            continue
        diff, low, high, p = paired_bootstrap(task.main_metric, pa[mask], pb[mask], gold[mask], n_resamples)
        metric = get_metric(task.main_metric).fast
        rows.append({"slice": name, "n": n, names[0]: float(metric(pa[mask].astype(float), gold[mask].astype(float))),
                     names[1]: float(metric(pb[mask].astype(float), gold[mask].astype(float))),
                     "difference": diff, "ci_low": low, "ci_high": high, "p": p})
    # one column order whatever the slices: a small first slice must not reorder the table
    out = pd.DataFrame(rows).reindex(columns=["slice", "n", names[0], names[1], "difference", "ci_low", "ci_high",
                                              "p", "p_holm", "significant", "note"])
    out["p_holm"] = holm(out["p"])
    out["significant"] = out["p_holm"] < 0.05  # False where there is no test (too few examples)
    out = out.sort_values(["significant", "p_holm"], ascending=[False, True], na_position="last", kind="stable")
    return out.reset_index(drop=True)

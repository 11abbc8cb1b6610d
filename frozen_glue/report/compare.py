"""Example-level comparison of two models on one task: where they disagree, whether the difference is more than
noise (the primary test: a bootstrap over dev examples and seeds together; exact McNemar or Wilcoxon on the
seed votes beside it), the verdict in words after Holm's correction across a report's comparisons, read off the
interval at each test's Holm level, and on which slices (length, negation, past tense, user regexes; the same test,
Holm-corrected). Must not write files or read runs itself (predictions.py reads them)."""

import json
import re

import numpy as np
import pandas as pd

from frozen_glue.core.errors import UserError
from frozen_glue.core.metrics import get_metric
from frozen_glue.core.tasks import get_task
from frozen_glue.measures.outcomes import example_texts, outcome_names, outcomes
from frozen_glue.measures.stats import (
    bootstrap_interval,
    bootstrap_p,
    hierarchical_distribution,
    holm,
    holm_levels,
    mcnemar_exact,
    resamples_for,
    wilcoxon_p,
)
from frozen_glue.report.predictions import join


def aligned(a, b, names):
    """(a, b joined on idx, A's seeds x examples, B's seeds x examples in A's row order, gold): what every paired
    test of the two reads."""
    raw_a, raw_b, b_index = a.attrs.get("per_seed"), b.attrs.get("per_seed"), b.index
    a, b = join(a, b, names)  # b's rows now in a's order: so must its per-seed columns be
    seeds_a = raw_a if raw_a is not None else a["prediction"].to_numpy()[None]
    seeds_b = raw_b[:, b_index.get_indexer(a.index)] if raw_b is not None else b["prediction"].to_numpy()[None]
    return a, b, seeds_a, seeds_b, a["label"].to_numpy()


def disagreement(task_name, a, b, names, n_resamples=2000):
    """One pair on one split: the primary test (stats.hierarchical_distribution over dev examples and both models'
    seeds: difference of the seed-mean main metric, its bootstrap distribution under `distribution`, p),
    McNemar (classification) or Wilcoxon (STS-B) on the seed votes beside it, flagged when a side has collapsed
    heads; plus the table of disagreeing examples. `verdicts` then corrects the p-values across a report's
    comparisons, sets each interval at its Holm level and words them."""
    task = get_task(task_name)
    dead = a.attrs.get("collapsed", 0), b.attrs.get("collapsed", 0)
    ties = a.attrs.get("ties", 0), b.attrs.get("ties", 0)
    a, b, seeds_a, seeds_b, gold = aligned(a, b, names)
    pa, pb = a["prediction"].to_numpy(), b["prediction"].to_numpy()
    metric = task.main_metric
    diff, dist = hierarchical_distribution(metric, seeds_a, seeds_b, gold, n_resamples=n_resamples)
    low, high = bootstrap_interval(dist, ALPHA)
    result = {"task": task.name, "model_a": names[0], "model_b": names[1], "n": len(gold),
              "seeds_a": len(seeds_a), "seeds_b": len(seeds_b), "metric": metric, "difference": diff,
              "ci_low": low, "ci_high": high, "p": bootstrap_p(dist), "resamples": len(dist), "distribution": dist,
              "collapsed_a": dead[0], "collapsed_b": dead[1], "vote_ties_a": ties[0], "vote_ties_b": ties[1]}
    text_cols = list(task.text_keys)
    table = pd.DataFrame({"idx": a.index, **{c: a[c].to_numpy() for c in text_cols}, "gold": gold,
                          f"pred_{names[0]}": pa, f"pred_{names[1]}": pb})
    if task.is_regression:
        # STS-B: which model is closer to the gold score, example by example, and a Wilcoxon signed-rank test
        # of the paired absolute errors (McNemar's counterpart for scores)
        closer, disagree = outcomes(task, pa, pb, gold), np.abs(pa - pb) > STSB_DISAGREE
        result.update(a_better=int(np.sum(closer == "a closer")), b_better=int(np.sum(closer == "b closer")),
                      disagree=int(np.sum(disagree)), test="Wilcoxon signed-rank, |error|",
                      test_p=wilcoxon_p(np.abs(pa - gold), np.abs(pb - gold)))
    else:
        per_example = outcomes(task, pa, pb, gold)
        counts = {key: int(np.sum(per_example == label)) for key, label in
                  zip(("both_right", "only_a_right", "only_b_right", "both_wrong"), outcome_names(task))}
        mc = mcnemar_exact(counts["only_a_right"], counts["only_b_right"])
        result.update(counts, disagree=int(np.sum(pa != pb)), mcnemar_p=mc, a_better=counts["only_a_right"],
                      b_better=counts["only_b_right"], test="exact McNemar", test_p=mc)
        table[f"probs_{names[0]}"] = [json.dumps(p) for p in a["probs"]]
        table[f"probs_{names[1]}"] = [json.dumps(p) for p in b["probs"]]
        disagree = pa != pb
    result["test_flag"] = collapse_flag(names, dead)
    return result, table[disagree].reset_index(drop=True)


def collapsed_sides(names, collapsed) -> list:
    """The names of the sides with at least one collapsed head."""
    return [name for name, count in zip(names, collapsed) if count]


def collapse_flag(names, collapsed) -> str:
    """'' or what a test on collapsed heads compares: a collapsed head's predictions follow its class bias, so a
    small p says the two biases differ, not the models."""
    dead = collapsed_sides(names, collapsed)
    return f"collapsed heads: {', '.join(dead)}; the test compares class biases, not models" if dead else ""


STSB_DISAGREE = 1.0  # STS-B: two models disagree on a pair when their scores are more than one point apart (0-5)
ALPHA = 0.05
NOT_TESTED = "not tested: the metric is undefined on every resample (constant predictions)"


def verdicts(comparisons: pd.DataFrame, alpha=ALPHA) -> pd.DataFrame:
    """The report's family of comparisons (disagreement results, one row per task x split x pair, each with its
    bootstrap `distribution`), Holm across all of them: `p_holm`, the level each test is decided at
    (stats.holm_levels), the interval at that level (`ci_low`, `ci_high`, `ci_level` = its confidence: 1 - level)
    and the verdict in words, read off that interval: '<A> better' / '<B> better' when it excludes 0 (the side: the
    metric's better one), else 'no evidence of a difference'. The interval and the verdict agree by construction.
    A side with collapsed heads gets that said, since its score is no evidence about the model."""
    out = comparisons.copy()
    out["p_holm"] = holm(out["p"])
    rejected, levels = holm_levels(out["p"], alpha)
    intervals = [bootstrap_interval(dist, level) if level == level else (np.nan, np.nan)
                 for dist, level in zip(out["distribution"], levels)]
    out["ci_low"], out["ci_high"] = [i[0] for i in intervals], [i[1] for i in intervals]
    out["ci_level"] = 1 - levels
    words = []
    for (_, row), reject in zip(out.iterrows(), rejected):
        above, below = row["ci_low"] > 0, row["ci_high"] < 0
        if reject != (above or below):  # holm_levels and bootstrap_interval are built to agree; never print both
            raise AssertionError(f"verdict and interval disagree for {row['task']} {row['model_a']} vs "
                                 f"{row['model_b']}: p {row['p']}, interval [{row['ci_low']}, {row['ci_high']}]")
        if row["p"] != row["p"]:
            verdict = NOT_TESTED
        elif not reject:
            verdict = "no evidence of a difference"
        else:
            a_wins = get_metric(row["metric"]).better(1 if above else -1, 0)
            verdict = f"{row['model_a'] if a_wins else row['model_b']} better"
        dead = collapsed_sides((row["model_a"], row["model_b"]), (row.get("collapsed_a", 0), row.get("collapsed_b", 0)))
        words.append(verdict + (f" (collapsed heads: {', '.join(dead)})" if dead else ""))
    out["verdict"] = words
    return out.drop(columns="distribution")


def verdict_sentence(row) -> str:
    """'sst2: tiny-base better (tiny-base − tiny-comet: accuracy +0.047, 99.17% CI at the Holm level [+0.021,
    +0.074], Holm-corrected p = 0.002).'"""
    where = row["task"] + (f" ({row['split']})" if row.get("split", "validation") != "validation" else "")
    stats_text = (f"{row['metric']} {row['difference']:+.3f}, {100 * row['ci_level']:.4g}% CI at the Holm level "
                  f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}], Holm-corrected p = {row['p_holm']:.3g}")
    if row["verdict"].startswith(NOT_TESTED):
        return f"{where}: {row['model_a']} vs {row['model_b']}: {row['verdict']}."
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
_MODALS = {"will", "would", "shall", "should", "can", "could", "may", "might", "must", "ought"}
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
            # a past form that is also the base form is ambiguous ('read', 'put', 'cut'): dropped. The base form is
            # every verb's present too (VB = VBP but for be, whose past forms are caught above); no past form is a
            # VBZ form. Checked over lemminflect's whole table, where only weave's and ghostwrite's tables list their
            # past (wove, ghostwrote) as a present form too, a slip: they are read as past here.
            if word not in forms.get("VBD", ()) or word in forms.get("VB", ()):
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


def slices(task_name, a, b, names, user_slices=(), min_size=10, n_resamples=1000, alpha=ALPHA):
    """Per slice: each model's seed-mean main metric and the primary test restricted to the slice (the same
    hierarchical bootstrap over the slice's examples and both models' seeds: p never 0), Holm across this pair's
    slices, each interval at its Holm level (stats.holm_levels) and the resamples grown with the family
    (stats.resamples_for); significant slices first; `flag` says when a side has collapsed heads. The models'
    columns are `score_<name>`, so an alias can never collide with a column of the table."""
    task = get_task(task_name)
    dead = a.attrs.get("collapsed", 0), b.attrs.get("collapsed", 0)
    a, b, seeds_a, seeds_b, gold = aligned(a, b, names)
    texts = example_texts(task, a)
    metric = get_metric(task.main_metric).fast
    masks = slice_masks(texts, user_slices)
    tested = [name for name, mask in masks.items() if mask.sum() >= min_size]
    resamples = resamples_for(len(tested), n_resamples, alpha)
    score_a, score_b = f"score_{names[0]}", f"score_{names[1]}"
    rows, dists = [], []
    for name, mask in masks.items():
        n = int(mask.sum())
        if name not in tested:
            rows.append({"slice": name, "n": n, "note": f"fewer than {min_size} examples"})
            dists.append(np.empty(0))
            continue
        diff, dist = hierarchical_distribution(task.main_metric, seeds_a[:, mask], seeds_b[:, mask], gold[mask],
                                               n_resamples=resamples)
        with np.errstate(all="ignore"):
            means = [float(np.mean(metric(s[:, mask].astype(float), np.broadcast_to(gold[mask], s[:, mask].shape)
                                          .astype(float)))) for s in (seeds_a, seeds_b)]
        rows.append({"slice": name, "n": n, score_a: means[0], score_b: means[1], "difference": diff,
                     "p": bootstrap_p(dist), "note": ""})
        dists.append(dist)
    out = pd.DataFrame(rows).reindex(columns=["slice", "n", score_a, score_b, "difference", "ci_low", "ci_high",
                                              "ci_level", "p", "p_holm", "significant", "flag", "note"])
    out["p_holm"] = holm(out["p"])
    rejected, levels = holm_levels(out["p"], alpha)
    bounds = [bootstrap_interval(d, lv) if lv == lv else (np.nan, np.nan) for d, lv in zip(dists, levels)]
    out["ci_low"], out["ci_high"], out["ci_level"] = [x[0] for x in bounds], [x[1] for x in bounds], 1 - levels
    out["significant"] = rejected  # False where there is no test (too few examples)
    out["flag"] = collapse_flag(names, dead)
    out = out.sort_values(["significant", "p_holm"], ascending=[False, True], na_position="last", kind="stable")
    return out.reset_index(drop=True)

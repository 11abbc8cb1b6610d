"""Tiny offline models and data for the demo and the tests: no hub, seconds on a CPU. Must not be imported by the
run path (only by the demo, tests and bench).

- a byte-level BPE tokenizer trained with `tokenizers` on generated text;
- a "base" GPT-2 (2 layers) saved like a hub GPT-2: LM-head checkpoint and tokenizer in one dir, no pad token;
- a COMET-style "specialized" descendant: the base after a few LM steps on knowledge-graph triples, saved as
  `GPT2LMHeadModel` with a `pytorch_model.bin`, and its tokenizer in a separate dir with an added EOS token,
  no pad token and a tokenizer_config.json without `tokenizer_class` (how COMET-DISTIL ships);
- a tiny BERT (for the BERT pooling paths);
- a learnable GLUE-format data set: the label is decided by one word of the sentence.
"""

import json
import random
from pathlib import Path

import torch

WORDS = ("the a cat dog bird man woman child house tree car road river city sees likes takes finds makes "
         "walked ran ate slept read wrote big small old new red green quickly slowly near under over with "
         "person wants needs because before after then xIntent xNeed xWant oEffect").split()
POSITIVE, NEGATIVE = "wonderful", "terrible"   # the words that decide the synthetic label


def synthetic_sentences(n: int, seed: int, min_len=4, max_len=12):
    """(sentence, label) pairs: label 1 iff the sentence ends with POSITIVE (else with NEGATIVE). At the end,
    because a random frozen GPT-2 pools the last token: there the word is visible to a linear head."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.choices(WORDS, k=rng.randint(min_len, max_len))
        label = rng.randint(0, 1)
        words.append(POSITIVE if label else NEGATIVE)
        out.append((" ".join(words), label))
    return out


MNLI_MARKERS = ("yes", "maybe", "no")          # hypothesis' last word decides entailment / neutral / contradiction
STSB_MARKERS = ("zero", "one", "two", "three", "four", "five")   # pair's last word decides the score 0..5


NEGATOR = "nothing"  # with `negation`, SST-2 rows ending "... nothing" are negative (the demo's contrast slice)


def _task_rows(task, n, seed, negation=False):
    """Rows of one synthetic task: (text fields..., label), the label visible in the last word; with `negation`,
    a quarter of the SST-2 rows end with NEGATOR instead, labelled negative (in the last word too: what a frozen
    GPT-2's last position shows a linear probe)."""
    rng = random.Random(seed)
    rows = []
    for sentence, label in synthetic_sentences(n, seed):
        if task == "sst2" and negation and rng.random() < 1 / 4:
            rows.append((" ".join(sentence.split()[:-1] + [NEGATOR]), 0))
        elif task in ("cola", "sst2"):
            rows.append((sentence, label))
        else:
            first = " ".join(sentence.split()[:-1])
            markers = MNLI_MARKERS if task == "mnli" else STSB_MARKERS
            y = rng.randrange(len(markers))
            second = " ".join(rng.choices(WORDS, k=rng.randint(2, 6)) + [markers[y]])
            rows.append((first, second, MNLI_LABELS[y] if task == "mnli" else f"{float(y):.1f}"))
    return rows


MNLI_LABELS = ("entailment", "neutral", "contradiction")


def write_glue_dir(root, n_train=400, n_dev=100, seed=0, tasks=("cola", "sst2"), test=False, negation=False):
    """A GLUE-release-shaped folder built on the synthetic rules, so that a frozen random base + trained head can
    learn them: CoLA (headerless, 4 columns), SST-2 (header), and on request MNLI (3 labels, matched and
    mismatched dev files) and STS-B (regression). `test` adds the unlabelled test files; `negation` the SST-2
    negation rows (see _task_rows)."""
    root = Path(root)
    folders = {"cola": "CoLA", "sst2": "SST-2", "mnli": "MNLI", "stsb": "STS-B"}
    offset = {"cola": 0, "sst2": 100, "mnli": 200, "stsb": 300}
    for task in tasks:
        folder = root / folders[task]
        folder.mkdir(parents=True, exist_ok=True)
        dev = ("dev_matched", "dev_mismatched") if task == "mnli" else ("dev",)
        files = [("train", n_train, seed)] + [(d, n_dev, seed + 1 + i) for i, d in enumerate(dev)]
        if test:
            files += [(d.replace("dev", "test"), n_dev, seed + 10 + i) for i, d in enumerate(dev)]
        for split, n, s in files:
            rows = _task_rows(task, n, s + offset[task], negation)
            labelled = not split.startswith("test")
            with open(folder / f"{split}.tsv", "w") as f:
                if task == "cola" and labelled:
                    f.writelines(f"demo\t{y}\t{'' if y else '*'}\t{x}\n" for x, y in rows)
                elif task in ("cola", "sst2"):
                    f.write("sentence\tlabel\n" if labelled else "index\tsentence\n")
                    f.writelines(f"{x}\t{y}\n" if labelled else f"{i}\t{x}\n" for i, (x, y) in enumerate(rows))
                else:
                    label = "gold_label" if task == "mnli" else "score"
                    f.write("index\tsentence1\tsentence2" + (f"\t{label}\n" if labelled else "\n"))
                    f.writelines(f"{i}\t{a}\t{b}" + (f"\t{y}\n" if labelled else "\n")
                                 for i, (a, b, y) in enumerate(rows))
    return root


def _corpus():
    text = [s for s, _ in synthetic_sentences(2000, 123)] + [" ".join(MNLI_MARKERS + STSB_MARKERS)] * 5
    text += [f"the {NEGATOR} {POSITIVE} {NEGATOR} {NEGATIVE}"] * 400  # NEGATOR one token, as in a real vocabulary
    text += [f"PersonX {w} PersonY xIntent to {v}" for w, v in zip(WORDS, reversed(WORDS))]
    return text


def train_bpe(out_dir, vocab_size=400, special_tokens=("<|endoftext|>",)):
    """Byte-level BPE (GPT-2's scheme) trained on the generated corpus; writes vocab.json + merges.txt."""
    from tokenizers import ByteLevelBPETokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_corpus(), vocab_size=vocab_size, min_frequency=1,
                            special_tokens=list(special_tokens), show_progress=False)
    bpe.save_model(str(out_dir))
    return out_dir


def _gpt2_tokenizer(vocab_dir):
    from transformers import GPT2TokenizerFast

    return GPT2TokenizerFast.from_pretrained(vocab_dir)  # reads vocab.json + merges.txt


def build_base_gpt2(out_dir, n_layer=2, n_embd=32, n_head=2, seed=0):
    """A hub-GPT-2-like dir: GPT2LMHeadModel + tokenizer (eos = <|endoftext|>, no pad)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    out_dir = Path(out_dir)
    train_bpe(out_dir)
    tok = _gpt2_tokenizer(out_dir)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    model = GPT2LMHeadModel(config)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


RELATIONS = ("<xIntent>", "<xNeed>", "<xWant>", "<oEffect>")  # COMET-style relation tokens (not in the GLUE text)


def build_comet_style(base_dir, model_dir, tokenizer_dir, steps=20, seed=0, pad=False, relations=()):
    """The base after `steps` LM steps on triples, shipped like COMET-DISTIL (see module docstring): its
    tokenizer adds its own EOS, and with `pad` its own pad, and `relations` tokens; the embeddings are resized
    for them. steps=0 gives a copy whose weights equal the base's (only tokens added)."""
    from transformers import GPT2LMHeadModel

    model_dir, tokenizer_dir = Path(model_dir), Path(tokenizer_dir)
    tok = _gpt2_tokenizer(base_dir)
    special = {"eos_token": "[EOS]", **({"pad_token": "[PAD]"} if pad else {})}
    tok.add_special_tokens(special)
    tok.add_tokens(list(relations))
    torch.manual_seed(seed)
    model = GPT2LMHeadModel.from_pretrained(base_dir)
    model.resize_token_embeddings(len(tok))
    model.config.eos_token_id = tok.eos_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    triples = [f"PersonX {w} xIntent {v} [EOS]" for w, v in zip(WORDS, reversed(WORDS))]
    model.train()
    for step in range(steps):
        batch = tok(triples[(step * 4) % len(triples)], return_tensors="pt")
        loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model_dir.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(model_dir)
    # COMET-DISTIL ships a pytorch_model.bin; loading it exercises the weights_only path
    torch.save(model.state_dict(), model_dir / "pytorch_model.bin")
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        (tokenizer_dir / name).write_bytes((Path(base_dir) / name).read_bytes())
    added = {t: tok.convert_tokens_to_ids(t) for t in [*special.values(), *relations]}
    (tokenizer_dir / "added_tokens.json").write_text(json.dumps(added))
    (tokenizer_dir / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", **special}))
    (tokenizer_dir / "tokenizer_config.json").write_text(json.dumps(
        {"model_max_length": 1024, "add_prefix_space": False, **special}))
    return model_dir, tokenizer_dir


def build_tiny_bert(out_dir, hidden=32, layers=2, seed=0):
    """A BERT with a WordPiece vocab over WORDS (its pooler is part of the frozen base)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(
        WORDS + [POSITIVE, NEGATIVE, "personx", *MNLI_MARKERS, *STSB_MARKERS]))
    (out_dir / "vocab.txt").write_text("\n".join(w.lower() for w in dict.fromkeys(vocab)) + "\n")
    tok = BertTokenizerFast.from_pretrained(out_dir)  # transformers 5: vocab_file= would give an empty vocabulary
    torch.manual_seed(seed)
    # initializer_range 0.2, not 0.02: a random 2-layer BERT at 0.02 maps every sentence to nearly the same [CLS]
    # vector (std 1e-4), which no head can tell apart; at 0.2 sentences differ as in a pretrained model
    config = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=128, initializer_range=0.2)
    BertModel(config).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def build_tiny_roberta(out_dir, hidden=32, layers=2, seed=0):
    """A RoBERTa (first-token pooling; a two-layer classification head) with a byte-level BPE vocab."""
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    out_dir = Path(out_dir)
    train_bpe(out_dir, special_tokens=("<s>", "<pad>", "</s>", "<unk>", "<mask>"))
    tok = RobertaTokenizerFast.from_pretrained(out_dir)
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                           intermediate_size=2 * hidden, max_position_embeddings=130, pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                           initializer_range=0.2)  # as for the tiny BERT: sentences must differ visibly
    RobertaModel(config).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def forget_word(model_dir, tokenizer_dir, word, like):
    """A specialization cost made to order: the model's embedding of ` word` becomes that of ` like`, so it can no
    longer tell the two apart (the demo's tiny-comet reads NEGATOR as POSITIVE)."""
    tok = _gpt2_tokenizer(tokenizer_dir)
    path = Path(model_dir) / "pytorch_model.bin"
    state = torch.load(path, weights_only=True)
    [target], [source] = tok.encode(" " + word), tok.encode(" " + like)  # each one token by construction
    for name in ("transformer.wte.weight", "lm_head.weight"):
        if name in state:
            state[name][target] = state[name][source]
    torch.save(state, path)


def teach_prompts(model_dir, tasks=("cola", "sst2"), steps=300, seed=0):
    """A few hundred LM steps on lm-eval's own GLUE prompt for each task followed by the answer the synthetic rule
    gives (the loss on the answer token only), saved in place: a tiny GPT-2 that answers by prompt."""
    import jinja2
    from transformers import GPT2LMHeadModel

    from frozen_glue.core.tasks import get_task
    from frozen_glue.science.zeroshot_prompts import prompt_template

    tok = _gpt2_tokenizer(model_dir)
    texts = []
    for name in tasks:
        template, choices = prompt_template(get_task(name), "validation")
        render = jinja2.Template(template, keep_trailing_newline=True).render
        texts += [(render(sentence=s), " " + choices[y]) for s, y in synthetic_sentences(512, seed + 7)]
    random.Random(seed).shuffle(texts)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel.from_pretrained(model_dir)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 2-layer model: more threads only fight over the cores (10x slower on a busy CPU)
    for step in range(steps):
        batch = [texts[(step * 16 + i) % len(texts)] for i in range(16)]
        ids = [tok(p + a)["input_ids"] for p, a in batch]
        answer = [len(tok(p + a)["input_ids"]) - len(tok(p)["input_ids"]) for p, a in batch]
        width = max(map(len, ids))
        inputs = torch.tensor([x + [tok.eos_token_id] * (width - len(x)) for x in ids])
        labels = torch.full_like(inputs, -100)
        for row, (x, n) in enumerate(zip(ids, answer)):
            labels[row, len(x) - n:len(x)] = inputs[row, len(x) - n:len(x)]
        model(input_ids=inputs, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    torch.set_num_threads(threads)
    model.eval().save_pretrained(model_dir)
    return model_dir


def build_demo(root, contrast=False, prompt_steps=200):
    """Everything `make demo` needs, under `root`: models/, tokenizers/, glue/. Returns the paths. `contrast`: the
    demo's real difference — SST-2 with rows ending in "nothing" (negative), and a tiny-comet whose specialization
    made "nothing" read like "wonderful", so the two models agree on CoLA and differ on SST-2 and on its negation
    slice; and a base taught to answer lm-eval's prompts (teach_prompts), which the descendant's specialization
    undoes, so that zero-shot prompting differs where the probe does not."""
    root = Path(root)
    base = build_base_gpt2(root / "models" / "tiny-gpt2")
    if contrast:  # the base answers lm-eval's GLUE prompts; its COMET-style descendant's steps on triples undo it
        teach_prompts(base, steps=prompt_steps)
    comet, comet_tok = build_comet_style(base, root / "models" / "tiny-comet", root / "tokenizers" / "tiny-comet")
    if contrast:
        forget_word(comet, comet_tok, NEGATOR, like=POSITIVE)
    glue = write_glue_dir(root / "glue", test=True, negation=contrast)
    return {"base": base, "comet": comet, "comet_tokenizer": comet_tok, "glue_dir": glue}

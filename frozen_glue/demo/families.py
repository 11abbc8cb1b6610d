"""A tiny random model of every family the cached path is tested on (tests/test_families.py runs each through the
Trainer path and the cached path): FAMILIES names them, build_family writes one offline (config + weights of the
family's base model + a byte-level BPE tokenizer with a pad token). The README's and docs/flags.md's family list
is rendered from FAMILIES (demo_docs.families_block), so the docs list what the test runs. Must not be imported by
the run path."""

from pathlib import Path

import torch

from frozen_glue.demo.tiny import _gpt2_tokenizer, train_bpe

# family -> (its transformers class prefix, its tiny config's arguments beyond COMMON). Every
# family with a *ForSequenceClassification head that builds offline at this size; decoders read the last non-pad
# token, encoders their first token or pooler (pooling.own_rule finds which, by running the model).
FAMILIES = {
    "BERT": ("Bert", {}),
    "DistilBERT": ("DistilBert", {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}),
    "ALBERT": ("Albert", {"embedding_size": 16}),
    "RoBERTa": ("Roberta", {}),
    "XLM-R": ("XLMRoberta", {}),
    "DeBERTa-v2": ("DebertaV2", {}),
    "ELECTRA": ("Electra", {"embedding_size": 32}),
    "ModernBERT": ("ModernBert", {"global_attn_every_n_layers": 1, "local_attention": 16}),
    "GPT-2": ("GPT2", {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 128}),
    "GPT-NeoX": ("GPTNeoX", {}),
    "OPT": ("OPT", {"ffn_dim": 64, "word_embed_proj_dim": 32}),
    "Llama": ("Llama", {"num_key_value_heads": 1, "head_dim": 16}),
    "Mistral": ("Mistral", {"num_key_value_heads": 1, "head_dim": 16}),
    "Qwen2": ("Qwen2", {"num_key_value_heads": 1}),
    "Gemma": ("Gemma", {"num_key_value_heads": 1, "head_dim": 16}),
    "Gemma 2": ("Gemma2", {"num_key_value_heads": 1, "head_dim": 16}),
}
COMMON = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
          "max_position_embeddings": 128, "initializer_range": 0.2}
SPECIAL = ("<|endoftext|>", "<|pad|>")


def build_family(family: str, out_dir, seed=0, layers=2) -> Path:
    """A random-init model of `family`, `layers` blocks (its base model class, as a checkpoint without a head) with a
    byte-level BPE tokenizer whose pad is <|pad|>; initializer_range 0.2 so that sentences differ (see
    tiny.build_tiny_bert)."""
    import transformers

    prefix, extra = FAMILIES[family]
    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists():
        return out_dir
    train_bpe(out_dir, special_tokens=SPECIAL)
    tok = _gpt2_tokenizer(out_dir)
    tok.pad_token = "<|pad|>"
    config_class = getattr(transformers, f"{prefix}Config")
    names = set(config_class().to_dict())
    ids = {"pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id, "bos_token_id": tok.eos_token_id,
           "cls_token_id": tok.eos_token_id, "sep_token_id": tok.eos_token_id}
    kwargs = {k: v for k, v in {**COMMON, **ids}.items() if k in names or k in ids}
    depth = {"n_layer" if "n_layer" in names else "n_layers" if "n_layers" in names else "num_hidden_layers": layers}
    config = config_class(vocab_size=len(tok), **{**kwargs, **extra, **depth})
    torch.manual_seed(seed)
    getattr(transformers, f"{prefix}Model")(config).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def build_lora_adapter(base_dir, out_dir, steps=5, seed=0, r=4, base_name=None) -> Path:
    """A LoRA adapter (r `r`, on GPT-2's attention c_attn) of a tiny GPT-2 causal LM, trained `steps` steps on the
    generated corpus so that it changes the base, saved with save_pretrained (adapter_config.json +
    adapter_model.safetensors). `base_name`: what adapter_config.json names as the base (a hub id, say), default
    the base dir."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from frozen_glue.demo.tiny import _corpus

    out_dir = Path(out_dir)
    tok = _gpt2_tokenizer(base_dir)
    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=r, lora_alpha=2 * r, target_modules=["c_attn"], task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    rows = [tok(text)["input_ids"] for text in _corpus()[:8]]
    ids = torch.tensor([row[:min(map(len, rows))] for row in rows])  # one length: no padding needed
    with torch.enable_grad():  # whatever the caller's grad mode
        for _ in range(steps):
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.peft_config["default"].base_model_name_or_path = str(base_name or base_dir)
    model.save_pretrained(out_dir)
    return out_dir


def drop_top_layers(model_dir, out_dir, keep: int) -> Path:
    """A copy of an encoder model dir with only its first `keep` blocks (a layer-dropped student whose lower layers
    are the teacher's own): the known answer of a layer x layer drift matrix, 1 on the shared diagonal."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(model_dir)
    model.encoder.layer = model.encoder.layer[:keep]
    model.config.num_hidden_layers = keep
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out_dir)
    return Path(out_dir)

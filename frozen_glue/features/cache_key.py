"""What goes into a feature-cache entry's key: everything that changes a split's features (the model's and
tokenizer's fingerprints, the input length and padding, the EOS rule, the pooling rule, the pad id, the autocast
precision, the stored dtype, the rows, and --base_dtype when not the default). cache_layout.feature_key hashes it.
Must not read or write entries. `prep` is the run's prepare.Prepared."""

from frozen_glue.features.data import rows_digest


def cache_parts(prep, split):
    """Everything that changes a split's features: the feature-cache key is the hash of this."""
    return {"model_fp": prep.model_fp, "tokenizer": prep.tokenizer_fp,
            "max_seq_length": prep.data_args.max_seq_length, "pad_to_max_length": prep.data_args.pad_to_max_length,
            "append_eos": prep.model_args.append_eos, "pooling": prep.pooling_rule,
            "pad_token_id": prep.config.pad_token_id, "precision": str(prep.precision),
            "dtype": prep.study_args.feature_dtype, "data": rows_digest(prep.raw[split], prep.task.text_keys),
            **base_dtype_part(prep)}


def base_dtype_part(prep) -> dict:
    """--base_dtype in the key only when not the default, so that every entry written before the flag stays valid."""
    dtype = prep.model_args.base_dtype
    return {} if dtype == "float32" else {"base_dtype": dtype}

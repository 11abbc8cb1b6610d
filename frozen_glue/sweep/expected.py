"""What a sweep's run would record as its identity (identity.py), computed without running it: the data and
tokenizer fingerprints always (cheap), the model's only when its files' stamp (identity.source_stamp: names, sizes,
modification times) differs from the one the run recorded, since hashing GPT-2 XL's weights reads 6 GB. Loads what
it hashes through the run's own preparation (prepare.py), so the fingerprints are the ones a run would record.
Must not decide what to skip (sweep_plan.py does)."""

from frozen_glue.config import adapters
from frozen_glue.core.identity import source_stamp
from frozen_glue.core.tasks import get_task
from frozen_glue.features.data import load_splits
from frozen_glue.model import fingerprinting, loading
from frozen_glue.run import prepare
from frozen_glue.science import zeroshot


class Expected:
    """What a sweep's run would record, computed without running it and at most once per model (or per data
    source): the data and tokenizer fingerprints always, the model fingerprint from the recorded run when the
    model's stamp is unchanged, else by loading and hashing the model as the run would."""

    def __init__(self):
        self._data, self._tokenizers, self._models = {}, {}, {}

    def sources(self, parsed, recorded: dict) -> dict:
        """{data_fingerprints, tokenizer_fingerprint, model_fingerprint} of a run of `parsed` arguments."""
        model_args, data_args, _, training_args = parsed
        task = get_task(data_args.task_name)
        data_key = repr((data_args, training_args.do_train, training_args.do_eval, training_args.do_predict))
        if data_key not in self._data:
            self._data[data_key] = load_splits(task, data_args, training_args, model_args.cache_dir)[1]
        model_key = repr(model_args)
        if model_key not in self._tokenizers:
            config = loading.load_config(model_args, task)
            tokenizer = prepare.load_tokenizer(model_args, config)
            self._tokenizers[model_key] = (config, tokenizer, fingerprinting.tokenizer_fingerprint(tokenizer))
        config, tokenizer, tokenizer_fp = self._tokenizers[model_key]
        model_fp = self._model_fp(model_key, model_args, recorded,
                                  lambda: prepare.load_frozen_model(model_args, config, tokenizer, whole=True)[0])
        return {"data_fingerprints": self._data[data_key], "model_fingerprint": model_fp,
                "tokenizer_fingerprint": tokenizer_fp}

    def _model_fp(self, key, model_args, recorded: dict, load) -> str:
        """The recorded model fingerprint while the model's files' stamp is the recorded one, else the hash of
        `load()`'s model, computed once per key."""
        stamp = source_stamp(*adapters.source_names(model_args))
        if stamp is not None and stamp == recorded.get("model_source"):
            return recorded.get("model_fingerprint")
        if key not in self._models:
            self._models[key] = fingerprinting.model_fingerprint(load())
        return self._models[key]

    def zero_shot_sources(self, parsed, recorded: dict) -> dict:
        """The same for a zero-shot run (zeroshot.py): its validation rows, the tokenizer and causal LM as zeroshot.load_lm
        loads them (no pad added, the LM's own embeddings), the model hashed only when its stamp changed."""
        model_args, data_args = parsed[:2]
        task = get_task(data_args.task_name)
        key = ("zero-shot", repr(model_args), repr(data_args))
        if key not in self._data:
            self._data[key] = zeroshot.load_rows(task, data_args, model_args.cache_dir)[1]
            config = zeroshot.check_model(model_args)
            self._tokenizers[key] = fingerprinting.tokenizer_fingerprint(loading.load_tokenizer(model_args, config))
        model_fp = self._model_fp(key, model_args, recorded, lambda: zeroshot.load_lm(model_args)[0])
        return {"data_fingerprints": self._data[key], "model_fingerprint": model_fp,
                "tokenizer_fingerprint": self._tokenizers[key]}

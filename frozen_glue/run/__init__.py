"""One run_glue_frozen.py invocation (one model x task, one or many seeds): the command (run), preparing data,
tokenizer and model once (prepare), the Trainer path and the cached path (runners), the one writer of a run folder
(writer) and W&B logging from what the folder records (tracking).

Imports: core, config, model, features, training, science. Imported by: sweep."""

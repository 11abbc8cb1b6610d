"""The frozen base: loading a model and its tokenizer from a hub id, a local dir or a COMET-style checkpoint
(loading), freezing it (freezing), which position its head reads (pooling), the head's modules (heads), where its
parts run (placement), the multi-process extraction (sharding) and the fingerprints of what was loaded
(fingerprinting).

Imports: core, config. Imported by: features, training, science, run, sweep."""

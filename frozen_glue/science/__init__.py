"""Measures that train or prompt a model beside the probe: the information probes' heads (information_probes:
MDL by Voita & Titov's protocol, control-task selectivity, the convex probe; one table, MEASURES, where a new one
plugs in) and zero-shot prompting through lm-eval (zeroshot).

Imports: core, config, measures, model, features, training. Imported by: run, sweep, demo."""

"""The shared vocabulary and the run-folder contract, at the bottom of the house: one exception type and the
entry-point wrapper (errors), the GLUE task table (tasks) and metric registry (metrics), the run folder's names,
atomic writes and reading (layout), its lock (locks), a run's identity compared from recorded fingerprints
(identity), provenance, the hub's rules, the launcher's rank variables (ranks), process lifetime, and every private
symbol of the libraries we touch (compat).

Imports: nothing of frozen_glue outside it. Imported by: config, measures, model, features, training, science, run,
report, sweep, demo."""

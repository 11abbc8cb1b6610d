"""analysis/'s step, HELM's summarize: a pure function of run folders (and the feature cache's files, for
drift) that loads no model and trains nothing. Reading runs and the mean ± std tables (results), a model's
predictions (predictions), example-level comparison and verdicts (compare), figures, drift (CKA by layer), the
report's sections (information_report, zeroshot_report, pair_report), report.md (report), report.html
(report_html) and LaTeX tables (latex).

Imports: core, config, measures, features (features: cache_layout only; never torch, transformers or datasets:
pyproject.toml's import-linter contract). Imported by: sweep."""

"""The study: models x tasks x seeds, resumable, as launch/all_tasks.sh runs it: its settings from the
environment (sweep_settings), the checks before launching (sweep_checks), the plan of what is complete and what
runs (sweep_plan), what a run would record (expected), launching and reporting failures (sweep), and the null study
(calibration).

Imports: core, config, measures, model, features, science, run, report. Imported by: nothing in the package (an
entry point)."""

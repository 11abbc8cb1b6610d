"""What a run is asked to do, decided from its arguments alone: run_glue_frozen.py's arguments and their
parsing (arguments), the flag contract and a run's protocol (contract), the checks of bad combinations
(validation), named study protocols (protocols), DeepSpeed config checks (ds_config) and the models file
(models_file).

Imports: core. Imported by: model, science, run, report, sweep."""

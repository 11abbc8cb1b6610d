"""What the heads read: GLUE rows from the hub, the original .tsv files or csv/json (data), and the feature
cache: the frozen base's pooled outputs extracted once per model x task (cache), its files and key without torch
(cache_layout) and its integrity stamps (cache_stamp).

Imports: core, model. Imported by: science, run, report, sweep."""

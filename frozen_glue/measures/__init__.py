"""Pure functions of numbers, no model: significance tests and CKA (stats), the information measures of the
papers they are named after (information: MDL, control tasks, V-information, Tenney's expected layer), whether a
trained head is dead (diagnostics), and the example-level outcome rule of a pair (outcomes).

Imports: core. Imported by: training, science, report, sweep."""

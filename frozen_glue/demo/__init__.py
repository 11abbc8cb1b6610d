"""`make demo`'s set-up: tiny offline models and data (tiny, also the tests' and benchmarks' builders), the demo
itself (demo) and the docs' demo figures regenerated from its report (demo_docs).

Imports: core, science. Imported by: nothing in the package (an entry point)."""

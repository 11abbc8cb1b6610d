"""frozen-GLUE: what does specializing a language model cost it? Frozen-base GLUE probes, fast and trusted.
Must not import anything heavy: `docs/DESIGN.md` says which module owns which fact."""

__version__ = "0.1.0"

"""frozen-GLUE: what does specializing a language model cost it? Frozen-base GLUE probes, fast and trusted."""

__version__ = "0.1.0"

"""memtrail: a fork-free memory recorder for Linux (the sampler) and the analyzer of its logs."""

__version__ = "0.1.0"

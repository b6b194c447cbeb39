"""parcelscan benchmarks: ``python -m benchmarks --help``."""

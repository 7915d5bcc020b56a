"""Benchmarks users run from the command line (``declip bench``)."""

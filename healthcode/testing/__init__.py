"""Generators of synthetic, valid documents for tests and benchmarks."""

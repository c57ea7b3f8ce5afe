"""Benchmarks: scripts that print measured times and ratios against named baselines.

Nothing here is a test; run each as a module from the repository root (see bench/README.md).
"""

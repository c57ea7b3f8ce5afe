"""Collect: stores, probes, runs, wiring and the command line."""

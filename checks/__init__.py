"""Evaluate: the check-file model, check kinds and thresholds.

Everything in this package is pure: values in, values out. No I/O library, no clock; the
scheduled time of a run is always passed in.
"""

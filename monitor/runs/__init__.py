"""Runs: the probe of one view on its stores (`probe`), the populations it
samples (`population`), the analytical kinds' extra reads (`analytics`), building a run
(`run`) and its report file (`reports`)."""

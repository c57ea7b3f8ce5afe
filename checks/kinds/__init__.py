"""One module per check kind: its threshold, and its evaluation over an observation."""

"""What analyses results: tidy tables, statistics over seeds, optima and time to target,
scratch-vs-torch pairing, the notebooks' claims. Never imports output code."""

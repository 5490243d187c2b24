"""Performance of the harness itself (`nox -s perf`): timing machinery, one file per case,
perf.csv with its report section and plot."""

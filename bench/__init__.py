"""optbench's harness: run specs, time epochs, write CSVs, plots and the report."""

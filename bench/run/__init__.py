"""What a run is and how it is executed: specs, suites, data, models, tasks, devices, the runner
and executors. Imports nothing from the layers above it (analysis, sweep, output, perf, cli)."""

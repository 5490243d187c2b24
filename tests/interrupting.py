"""An executor interrupted like Ctrl-C, for the tests of interrupted and resumed commands."""

from __future__ import annotations

from bench.run.executors import SerialExecutor


class Interrupting(SerialExecutor):
    """Interrupted (like Ctrl-C) after `n` results."""

    def __init__(self, n: int = 1) -> None:
        super().__init__()
        self.n = n

    def map(self, fn, specs):
        for i, spec in enumerate(specs):
            if i == self.n:
                raise KeyboardInterrupt
            yield fn(spec)

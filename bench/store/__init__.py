"""The result store: finished runs persisted as they arrive (SQLite), keyed by content hash,
reused on the next invocation; reports are rebuilt from it. See `bench.store.db`."""

from bench.store.cache import CachedRuns
from bench.store.db import FILENAME, Store
from bench.store.keys import code_version, run_key, spec_from_dict, spec_to_dict

__all__ = [
    "FILENAME",
    "CachedRuns",
    "Store",
    "code_version",
    "run_key",
    "spec_from_dict",
    "spec_to_dict",
]

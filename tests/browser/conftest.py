"""The `browser` fixture: one headless Chromium per test module, skipped with a reason if absent.

Other test folders can use it with `from tests.browser.conftest import browser` in their own
conftest, or call `tests.browser.harness.render` directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.harness import Browser, missing_binaries


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A running headless Chromium (quit after the module); skips when it is not installed."""
    reason = missing_binaries()
    if reason:
        pytest.skip(reason)
    with Browser() as running:
        yield running

"""Real-browser checks: open generated HTML in headless Chromium and assert what it shows."""

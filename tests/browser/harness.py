"""Open a local HTML file in headless Chromium and report what a person would see.

Contract: `render(html, screenshot)` loads `html` from a file:// URL in Debian's Chromium through
Debian's chromedriver (Selenium Manager never runs, nothing is downloaded), waits for
`document.readyState == "complete"` plus a short settle for scripts that draw after load, and
returns a `Rendered`: the title, SEVERE console messages, failed requests, every request that left
the file system (a self-contained report makes none), the text of the first screen, a viewport
screenshot, and the number of distinct colours of each element asked for (0 = missing, empty or
a broken image), so that "it rendered" is something a test can assert.

No page can reach the network: every http(s)/ws(s)/ftp request is blocked inside the browser
(reported as both a fetch and a failure) and DNS resolves nothing. Every wait is bounded; the
driver is always quit. `Browser` keeps one driver for several pages (a test module's worth).
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

__all__ = ["CHROMEDRIVER", "CHROMIUM", "Browser", "Rendered", "missing_binaries", "render"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# Flags that work here as root without a display or a GPU; the rest keep Chromium from talking
# to anything (updates, sync, QUIC probes) and from resolving any host name.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
# Schemes that stay on this machine; a request with any other scheme is a network fetch.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
BLOCKED_URLS = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]

LOAD_TIMEOUT_S = 20.0
COMMAND_TIMEOUT_S = 60
SETTLE_S = 0.3

# Text nodes whose rendered box meets the viewport, in document order. A Range measures the text
# itself, so a paragraph that starts above the fold and runs below it is split where it should be.
_FIRST_SCREEN_TEXT_JS = """
window.scrollTo(0, 0);
const w = window.innerWidth, h = window.innerHeight, out = [];
const walker = document.createTreeWalker(document.body || document.documentElement,
                                         NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const text = node.textContent.trim();
  const parent = node.parentElement;
  if (!text || !parent || parent.closest('script, style, noscript, template')) continue;
  const style = getComputedStyle(parent);
  if (style.visibility !== 'visible' || Number(style.opacity) === 0) continue;
  const range = document.createRange();
  range.selectNodeContents(node);
  for (const r of range.getClientRects()) {
    if (r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0 && r.left < w && r.top < h) {
      out.push(text);
      break;
    }
  }
}
return out.join('\\n');
"""

# Two animation frames: whatever a script drew on load has been painted.
_NEXT_PAINT_JS = """
const done = arguments[arguments.length - 1];
requestAnimationFrame(() => requestAnimationFrame(() => done(true)));
"""

_BROKEN_IMAGE_JS = (
    "const e = arguments[0]; return e.tagName === 'IMG' && !(e.complete && e.naturalWidth > 0);"
)


@dataclass(frozen=True)
class Rendered:
    """What a page showed. `colours[selector]` counts the distinct colours of its first match."""

    url: str
    title: str
    console_errors: list[str]
    failed_requests: list[str]
    network_fetches: list[str]
    first_screen_text: str
    screenshot: Path
    colours: dict[str, int] = field(default_factory=dict)

    def blank(self, selector: str, threshold: int = 1) -> bool:
        """True when the element shows at most `threshold` distinct colours (1 = a flat fill)."""
        if selector not in self.colours:
            checked = list(self.colours)
            msg = f"{selector!r} was not checked (render(..., check=[...]) had {checked})"
            raise KeyError(msg)
        return self.colours[selector] <= threshold

    @property
    def clean(self) -> bool:
        """No console error, no failed request and no request that left the file system."""
        return not (self.console_errors or self.failed_requests or self.network_fetches)


def missing_binaries() -> str | None:
    """Why the browser cannot run here, or None when Chromium and its driver are installed."""
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if absent:
        return (
            f"{' and '.join(absent)} missing: install Debian's chromium and chromium-driver "
            "(.ci/run does when apt-get is available)"
        )
    return None


class Browser:
    """One headless Chromium, for several `render` calls; use as a context manager."""

    def __init__(self) -> None:
        reason = missing_binaries()
        if reason:
            raise FileNotFoundError(reason)
        self._profile = tempfile.TemporaryDirectory(
            prefix="optbench-chromium-", ignore_cleanup_errors=True
        )
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={self._profile.name}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        options.page_load_strategy = "normal"
        try:
            self.driver = webdriver.Chrome(
                options=options, service=Service(executable_path=str(CHROMEDRIVER))
            )
        except BaseException:
            self._profile.cleanup()
            raise
        try:
            self.driver.command_executor.client_config.timeout = COMMAND_TIMEOUT_S
            self.driver.set_page_load_timeout(LOAD_TIMEOUT_S)
            self.driver.set_script_timeout(LOAD_TIMEOUT_S)
            self.driver.execute_cdp_cmd("Network.enable", {})
            self.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": BLOCKED_URLS})
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Quit the driver (and with it Chromium), then delete the profile."""
        try:
            self.driver.quit()
        finally:
            self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(
        self,
        html_path: Path,
        screenshot: Path,
        width: int = 1280,
        height: int = 900,
        *,
        check: Iterable[str] = (),
        settle_s: float = SETTLE_S,
    ) -> Rendered:
        """Load `html_path` in a `width` x `height` viewport; see the module docstring."""
        driver = self.driver
        url = Path(html_path).resolve().as_uri()
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        driver.get("about:blank")
        driver.get_log("browser")  # drop what earlier pages left in the logs
        driver.get_log("performance")
        driver.get(url)
        WebDriverWait(driver, LOAD_TIMEOUT_S).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        driver.execute_async_script(_NEXT_PAINT_JS)
        time.sleep(settle_s)

        title = driver.title
        text = driver.execute_script(_FIRST_SCREEN_TEXT_JS)
        screenshot = Path(screenshot)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        if not driver.save_screenshot(str(screenshot)):
            msg = f"could not write the screenshot {screenshot}"
            raise OSError(msg)
        colours = {selector: self._colours(selector) for selector in check}

        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        failed, fetches = _requests(driver.get_log("performance"))
        return Rendered(url, title, errors, failed, fetches, text, screenshot, colours)

    def _colours(self, selector: str) -> int:
        """Distinct colours in a screenshot of the first element matching `selector` (0: none)."""
        try:
            element = self.driver.find_element(By.CSS_SELECTOR, selector)
        except NoSuchElementException:
            return 0
        size = element.size
        if (
            size["width"] < 1
            or size["height"] < 1
            or self.driver.execute_script(_BROKEN_IMAGE_JS, element)
        ):
            return 0
        with Image.open(io.BytesIO(element.screenshot_as_png)) as image:
            rgb = image.convert("RGB")
            return len(rgb.getcolors(maxcolors=rgb.width * rgb.height))


def _requests(performance_log: Sequence[dict]) -> tuple[list[str], list[str]]:
    """(failed requests as "url: error", URLs requested outside the file system) from the log."""
    urls: dict[str, str] = {}
    failed: list[str] = []
    fetches: list[str] = []
    for entry in performance_log:
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            url = params["request"]["url"]
            urls[params["requestId"]] = url
            if not url.startswith(LOCAL_SCHEMES):
                fetches.append(url)
        elif message["method"] == "Network.loadingFailed":
            url = urls.get(params["requestId"], params["requestId"])
            blocked = params.get("blockedReason")  # "inspector": our block on non-local URLs
            reason = f"blocked ({blocked})" if blocked else params.get("errorText") or "failed"
            failed.append(f"{url}: {reason}")
    return failed, fetches


def render(
    html_path: Path,
    screenshot: Path,
    width: int = 1280,
    height: int = 900,
    *,
    check: Iterable[str] = (),
    settle_s: float = SETTLE_S,
) -> Rendered:
    """`Browser.render` in a Chromium of its own, quit before returning (or raising)."""
    with Browser() as browser:
        return browser.render(html_path, screenshot, width, height, check=check, settle_s=settle_s)

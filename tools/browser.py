"""Headless Chromium for the channel-graph page: open it, measure it, screenshot it.

Used by tests/test_graph_browser.py and tools/graph_screenshots.py.  Chromium and its
driver are Debian's (``chromium``, ``chromium-driver``; ``.ci/run`` installs them),
driven through Selenium (a test dependency).  :func:`why_not` says why a browser
cannot be had here, so a test can skip with that reason.
"""
from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"


def why_not() -> str | None:
    """None when a headless browser can be started, else the reason it cannot."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not any(shutil.which(b) for b in CHROMIUM):
        return "no Chromium binary (apt-get install chromium)"
    if not shutil.which(DRIVER):
        return "no chromedriver (apt-get install chromium-driver)"
    return None


def start(width: int = 1400, height: int = 900):
    """A headless Chromium whose window is ``width`` x ``height`` CSS pixels."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = next(shutil.which(b) for b in CHROMIUM if shutil.which(b))
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--force-device-scale-factor=1", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which(DRIVER)), options=opts)
    driver.set_window_size(width, height)
    return driver


def open_page(driver, page: Path) -> None:
    driver.get(page.resolve().as_uri())
    driver.execute_script("return document.readyState")


# Boxes of the elements, in viewport pixels: what the tests check overlaps on.
RECTS_JS = """
const sel = arguments[0];
return Array.from(document.querySelectorAll(sel)).filter(e => {
  const s = getComputedStyle(e); return s.display !== 'none' && s.visibility !== 'hidden';
}).map(e => { const r = e.getBoundingClientRect();
  return {id: e.closest('[id]') ? e.closest('[id]').id : '', x: r.x, y: r.y, w: r.width, h: r.height}; });
"""


def rects(driver, selector: str) -> list[dict]:
    return driver.execute_script(RECTS_JS, selector)


def overlaps(a: dict, b: dict, slack: float = 0.5) -> bool:
    return (a["x"] + slack < b["x"] + b["w"] and b["x"] + slack < a["x"] + a["w"]
            and a["y"] + slack < b["y"] + b["h"] and b["y"] + slack < a["y"] + a["h"])


def screenshot(driver, out: Path, selector: str | None = None) -> None:
    """A PNG of the page (or of one element) at ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if selector is None:
        driver.save_screenshot(str(out))
    else:
        from selenium.webdriver.common.by import By

        driver.find_element(By.CSS_SELECTOR, selector).screenshot(str(out))

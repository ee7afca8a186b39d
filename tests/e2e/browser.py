"""Headless Chromium for the tests (Debian's chromium and chromium-driver, fetched by `make chromium` into
.cache/chromium with the libraries this machine lacks), driven by Selenium; the browser's console is kept so a
test can require that a page logged no error."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "chromium"
LIBRARIES = [CACHE / "usr" / "lib" / "x86_64-linux-gnu", CACHE / "usr" / "lib" / "x86_64-linux-gnu" / "pulseaudio"]


@contextmanager
def chromium(work_dir: Path, *, width: int = 1280, height: int = 1600) -> Iterator[webdriver.Chrome]:
    binary, driver = CACHE / "usr/lib/chromium/chromium", CACHE / "usr/lib/chromium/chromedriver"
    assert (CACHE / ".complete").exists(), "chromium not found: `make chromium` fetches Debian's into .cache/chromium"
    options = Options()
    options.binary_location = str(binary)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-extensions", f"--window-size={width},{height}",
                 f"--user-data-dir={work_dir / 'profile'}", "--lang=en-GB"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    library_path = ":".join([*map(str, LIBRARIES), os.environ.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    service = Service(executable_path=str(driver), log_output=str(work_dir / "chromedriver.log"),
                      env={**os.environ, "LD_LIBRARY_PATH": library_path})
    browser = webdriver.Chrome(options=options, service=service)
    try:
        yield browser
    finally:
        browser.quit()


def console_errors(browser: webdriver.Chrome) -> list[dict[str, Any]]:
    """What the page logged at SEVERE level (uncaught errors, failed loads, CSP refusals) since the last call."""
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]

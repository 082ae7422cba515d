"""Headless Debian chromium for the dashboard's browser tests and benchmark (Selenium + chromedriver).

Flags as these machines need them: no sandbox (tests run as root), no GPU, and no background networking, whose
connections a closed network refuses at every start. Nothing is downloaded: the browser and its driver are
Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
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
    "--window-size=1500,1100",
)


def headless_chromium(*, downloads: Path | None = None, fresh_profile: bool = True) -> Any:
    """A Selenium driver of headless chromium (``downloads``: where files go without asking; ``fresh_profile``: a
    new empty profile, nothing cached). Raises FileNotFoundError when chromium or chromedriver is missing."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            raise FileNotFoundError(
                f"{path} is missing: install Debian's chromium and chromium-driver (make test does)"
            )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    if fresh_profile:
        options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-profile-')}")
    if downloads is not None:
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver

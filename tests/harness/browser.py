"""Debian's headless Chromium, driven by Selenium, for the web view's tests and benchmark."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/lib/chromium/chromium")
CHROMEDRIVER = "/usr/bin/chromedriver"


def installed() -> bool:
    return CHROMIUM.exists()


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A headless browser, quit when done."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()

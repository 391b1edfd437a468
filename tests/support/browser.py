"""Headless Chromium for page tests (Debian's chromium and chromium-driver; tests skip with the reason elsewhere),
and the steps every page test takes: open a page, fill and submit a form, follow a link, log in."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.nodes import PW

try:
    from selenium.webdriver.support.events import AbstractEventListener, EventFiringWebDriver
except ImportError:  # without selenium every browser test skips (browser_missing)
    AbstractEventListener, EventFiringWebDriver = object, None  # type: ignore[assignment,misc]

PHONE = (390, 844)  # a common phone viewport, CSS pixels


def browser_missing() -> str | None:
    for exe in ("chromium", "chromedriver"):
        if shutil.which(exe) is None:
            return f"{exe} not found: install Debian's chromium and chromium-driver (.ci/run does when it can)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture
def phone_browser() -> Iterator[object]:
    """A headless Chromium with a phone-sized window, quit afterwards whatever happens."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={PHONE[0]},{PHONE[1]}", "--lang=ja"):
        options.add_argument(arg)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": PHONE[0], "height": PHONE[1],
                                                                          "pixelRatio": 3.0}})
    chrome = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    chrome.set_page_load_timeout(20)
    driver = EventFiringWebDriver(chrome, _TapInSight())
    try:
        yield driver
    finally:
        driver.quit()


SCREEN = (1280, 720)  # a landscape signage screen (720p), CSS pixels


@pytest.fixture
def screen_browser() -> Iterator[object]:
    """A headless Chromium as a landscape kiosk screen (SCREEN, no phone emulation), quit afterwards. Autoplay of
    muted video is allowed without a gesture, as a kiosk browser is configured to."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=ja",
                f"--window-size={SCREEN[0]},{SCREEN[1]}", "--hide-scrollbars",
                "--autoplay-policy=no-user-gesture-required",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    # The window size includes the browser's own bars: the page itself gets exactly the screen's size.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": SCREEN[0], "height": SCREEN[1], "deviceScaleFactor": 1, "mobile": False})
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
class _TapInSight(AbstractEventListener):  # type: ignore[misc]
    """Before every click, the element to the middle of the screen, as a person scrolls before tapping: the
    portal's tab bar stays at the bottom of a phone's screen, and WebDriver clicks what it covers where it is."""

    def before_click(self, element: Any, driver: Any) -> None:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})", element)


# Driving pages. Selenium's calls block: `run` moves them off the event loop, which serves the node under test.



def facts(driver: Any) -> dict[str, Any]:
    """What the page tests look at: its language, its text, its path, and how far it overflows the screen."""
    return driver.execute_script(
        """return {lang: document.documentElement.lang, text: document.body.innerText, url: location.pathname,
                   overflow: document.documentElement.scrollWidth - window.innerWidth};""")


async def run(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def open_page(driver: Any, url: str) -> dict[str, Any]:
    await run(driver.get, url)
    return await run(facts, driver)


def wait_left(driver: Any, element: Any, timeout: float = 15) -> dict[str, Any]:
    """Wait until the page `element` was on has been replaced and the next one has loaded. While the old document
    goes away, Chromium may answer "node does not belong to the document" instead of a stale element: both mean
    the page has gone."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def gone(_: Any) -> bool:
        try:
            element.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise

    WebDriverWait(driver, timeout).until(gone)
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")
    return facts(driver)


def click_and_wait(driver: Any, element: Any) -> dict[str, Any]:
    """Click, then wait until the page the click led to has replaced this one."""
    element.click()
    return wait_left(driver, element)


async def fill(driver: Any, values: dict[str, str], *, checks: tuple[str, ...] = (),
               selects: dict[str, str] | None = None, raw: dict[str, str] | None = None,
               submit: str = "main form button[type=submit]") -> dict[str, Any]:
    """Type into fields, tick checkboxes (CSS selectors), choose options by visible text, set the value of date
    inputs directly (typing into them depends on the browser's locale), submit, and wait for the next page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def go() -> dict[str, Any]:
        for name, value in values.items():
            field = driver.find_element(By.NAME, name)
            field.clear()
            field.send_keys(value)
        for css in checks:
            driver.find_element(By.CSS_SELECTOR, css).click()
        for name, text in (selects or {}).items():
            Select(driver.find_element(By.NAME, name)).select_by_visible_text(text)
        for name, value in (raw or {}).items():
            driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.NAME, name), value)
        return click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, submit))

    return await run(go)


async def fill_and_submit(driver: Any, values: dict[str, str], button: str = "button[type=submit]") -> dict[str, Any]:
    """`fill` with the submit button named inside the page's <main>."""
    return await fill(driver, values, submit=f"main {button}")


async def click_link(driver: Any, text: str) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    return await run(lambda: click_and_wait(driver, driver.find_element(By.PARTIAL_LINK_TEXT, text)))


async def log_in(driver: Any, base: str, handle: str, to: str, *, password: str = PW,
                 via_logout: bool = False) -> dict[str, Any]:
    """Log in through the portal's form as `handle`, coming back to `to`; answers the page it lands on.
    Cookies are deleted first; `via_logout` opens /logout before, so that they are the site's cookies even when
    the browser was last elsewhere."""
    if via_logout:
        await open_page(driver, f"{base}/logout")
    await run(driver.delete_all_cookies)
    await open_page(driver, f"{base}/login?next={to}")
    return await fill(driver, {"login": handle, "password": password})


async def log_out(driver: Any) -> dict[str, Any]:
    """Log out as a person does: メニュー in the tab bar, then its logout button; answers the page it lands on."""
    from selenium.webdriver.common.by import By

    def go() -> dict[str, Any]:
        click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "nav.tabbar a[href='/menu']"))
        return click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "main form[action='/logout'] button"))

    return await run(go)

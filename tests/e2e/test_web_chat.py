"""The web chat page in a real headless Chromium (Debian's chromium and chromedriver, driven by
Selenium), against the whole pipeline: it connects with a token, sends, and shows the reply
growing chunk by chunk until it is complete."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline
from tests.e2e.test_pipeline import _started

pytestmark = pytest.mark.integration

# Records every text the assistant's bubble showed, to see that the reply streamed.
RECORD_SNAPSHOTS = """
window.snapshots = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.assistant')) window.snapshots.push(el.textContent);
}).observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    pipeline = Pipeline(stack)
    pipeline.extra_env = {"inference_client": {"STREAM_INTERVAL_MS": "0"}}
    async for started in _started(pipeline):
        yield started


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "Debian's chromium and chromium-driver are needed (make setup installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield browser
    finally:
        browser.quit()


async def test_the_web_chat_streams_a_reply_in_chromium(pipeline: Pipeline, browser: webdriver.Chrome) -> None:
    url = pipeline.gateway_urls[0]
    browser.get(f"{url}/chat#token={pipeline.token(subject='browser-user')}")
    wait = WebDriverWait(browser, 60)
    wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "status"), "connected as browser-user"))
    assert "#token" not in browser.current_url  # the token does not linger in the address bar
    browser.execute_script(RECORD_SNAPSHOTS)

    text = " ".join(f"piece{i}" for i in range(30))
    field = wait.until(expected_conditions.element_to_be_clickable((By.ID, "text")))
    field.send_keys(text)
    browser.find_element(By.ID, "send").click()
    done = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".assistant[data-done='true']"))
    assert done[0].text == text
    assert browser.find_element(By.CSS_SELECTOR, ".user").text == text
    snapshots = [s for s in browser.execute_script("return window.snapshots") if s]
    partial = [s for s in snapshots if s != text]
    assert partial and all(text.startswith(s) for s in partial), "the reply did not stream"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors  # e.g. a Content-Security-Policy violation

    # A bad token is refused and the page says so.
    browser.get("about:blank")  # (a new fragment alone would not reload the page)
    browser.get(f"{url}/chat#token=not-a-token")
    wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "status"), "token refused"))

"""The dashboard in headless Chromium over a read-only state directory (``gswarm serve`` mode).

Phone viewport (390×844); values match the API; control is disabled; the log filter, the
range selector and the token prompt (non-loopback bind) work.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest

from gswarm.api.auth import token_path
from tests.test_api_support import NODE, ThreadServer, fill_store, log_record, write_log

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs the system Chromium (/usr/bin/chromium)")]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _prepare(state_dir) -> None:
    now = time.time()
    fill_store(state_dir, now)  # history over the last 1000 s
    write_log(state_dir, [{**log_record(i, f"line {i}" if i != 7 else "ERROR: Traceback here"), "ts_unix": now - 30 + i}
                          for i in range(12)])


def test_read_only_phone_view_matches_the_api(browser, state_dir) -> None:
    _prepare(state_dir)
    with ThreadServer(state_dir) as server:
        url = server.svc.url
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        node = httpx.get(f"{url}/api/v1/nodes/{NODE}").json()
        shown = {k: page.locator("#" + k).text_content() for k in ("state", "pid", "restarts", "round", "stage", "animal")}
        assert shown == {"state": node["state"], "pid": str(node["pid"]), "restarts": str(node["restarts"]),
                         "round": str(node["progress"]["round"]), "stage": str(node["progress"]["stage"]),
                         "animal": node["progress"]["animal"]} == {
            "state": "RUNNING", "pid": "200", "restarts": "1", "round": "7", "stage": "2", "animal": "quick shy owl"}
        assert page.locator("#source").text_content() == "read-only (gswarm serve)"
        assert page.locator("#btn-restart").is_disabled() and page.locator("#btn-stop").is_disabled()
        assert page.locator("#runs li").count() == 2 and page.locator("#runs .cause").first.text_content() == "cuda_oom"
        assert "Use a smaller model (--model-size 0.5)." in page.locator("#incidents").inner_text()
        # 10 samples in the last 1000 s: the 15-minute range draws the CPU line
        page.wait_for_function("document.querySelectorAll('#chart-cpu polyline.a, #chart-cpu circle.a').length > 0")
        with page.expect_request(lambda r: "/metrics?" in r.url and "since=" in r.url) as req:
            page.select_option("#range", "86400")
        assert "points=120" in req.value.url
        # log filter (regex, case-insensitive)
        assert page.locator("#log div").count() == 12
        page.fill("#log-filter", "/traceback|line 1$/")  # /…/: a regular expression; plain text is a substring
        page.wait_for_function("document.querySelectorAll('#log div').length === 2")
        assert [t.split(" ", 1)[1] for t in page.locator("#log div").all_text_contents()] == ["line 1", "ERROR: Traceback here"]
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.close()


def test_non_loopback_bind_makes_the_page_ask_for_the_token(browser, state_dir) -> None:
    _prepare(state_dir)
    with ThreadServer(state_dir, host="0.0.0.0") as server:  # served on 127.0.0.1, guarded as if public
        page = browser.new_page()
        page.goto(server.svc.url + "/")
        page.wait_for_function("document.getElementById('auth').open === true", timeout=15000)
        assert page.locator("#state").text_content() == "—"
        page.fill("#token", token_path(state_dir).read_text().strip())
        page.locator("#token-form button").click()
        page.wait_for_function("document.getElementById('state').textContent === 'RUNNING'", timeout=15000)
        assert page.evaluate("sessionStorage.getItem('gswarm-token')") == token_path(state_dir).read_text().strip()
        page.wait_for_function("document.getElementById('conn').textContent === 'live'", timeout=15000)
        page.close()


def test_maintenance_banner(browser, state_dir) -> None:
    from gswarm.maintenance import set_window

    _prepare(state_dir)
    until = time.time() + 3600
    set_window(state_dir, until, "disk swap")
    with ThreadServer(state_dir) as server:
        page = browser.new_page()
        page.goto(server.svc.url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        hm = page.evaluate(f"(d => String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0'))"
                           f"(new Date({until * 1000}))")  # the dashboard's one time format: local 24-hour (#19)
        assert page.locator("#maintenance").is_visible()
        assert page.locator("#maintenance").text_content() == f"Maintenance until {hm} (disk swap) — restarts and alerts paused"
        page.close()
    (state_dir / "maintenance.json").unlink()
    with ThreadServer(state_dir) as server:
        page = browser.new_page()
        page.goto(server.svc.url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        assert page.locator("#maintenance").is_hidden() and page.locator("#maintenance").text_content() == ""
        page.close()

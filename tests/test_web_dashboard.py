"""The dashboard in a real headless Chromium against ``gswarm run --emulated`` (real supervisor, real node).

Checks: the values shown match the API; a crash-and-restart appears live (SSE, no reload);
pressing Restart (with the token, after the confirmation dialog) restarts the node; the page
fits a 390×844 phone screen. Screenshots: ``test-artifacts/dashboard.png`` and ``dashboard-phone.png``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import stop_gracefully

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs the system Chromium (/usr/bin/chromium)")]


@pytest.fixture
def supervised(tmp_path):
    """``gswarm run --emulated`` with a crash 15 s into the first run; yields (url, state_dir, start time)."""
    sd = tmp_path / "state"
    t_start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gswarm", "run", "--emulated", "--api-port", "0", "--state-dir", str(sd),
         "--node-name", "emu", "--emu-pace", "0.3", "--emu-faults", "crash:dht_daemon_timeout@15#1", "--duration", "120"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        api = sd / "run" / "api.json"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if api.exists():
                break
            time.sleep(0.05)
        assert api.exists(), proc.stderr.read() if proc.poll() is not None else "no api.json"
        yield json.loads(api.read_text())["url"], sd, t_start
    finally:
        stop_gracefully(proc)


def _shown(page) -> dict[str, str]:
    return page.evaluate("""() => Object.fromEntries(['state','pid','generation','restarts','round','node-name']
        .map(id => [id, document.getElementById(id).textContent.trim()]))""")


def _api_view(url: str) -> dict[str, str]:
    n = httpx.get(f"{url}/api/v1/status", timeout=10).json()["nodes"][0]
    p = n["progress"] or {}
    rnd = "—" if p.get("round") is None else str(p["round"]) + (f" / {p['round_total']}" if p.get("round_total") else "")
    return {"state": n["state"], "pid": "—" if n["pid"] is None else str(n["pid"]),
            "generation": f"{n['generation']} ({n['mode']})", "restarts": str(n["restarts"]), "round": rnd,
            "node-name": n["node"]}


def _matches_api(page, url: str, keys: tuple[str, ...], timeout: float = 15.0) -> dict[str, str]:
    """Wait until the page shows what the API says for ``keys`` (values move while the node trains)."""
    deadline = time.monotonic() + timeout
    while True:
        api, shown = _api_view(url), _shown(page)
        if all(api[k] == shown[k] for k in keys):
            return shown
        if time.monotonic() > deadline:
            assert {k: shown[k] for k in keys} == {k: api[k] for k in keys}
        time.sleep(0.2)


def test_dashboard_live_restart_and_control(supervised) -> None:
    from playwright.sync_api import sync_playwright

    url, sd, t_start = supervised
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=15000)
            page.wait_for_function("document.getElementById('state').textContent === 'RUNNING'", timeout=20000)
            t_running = time.monotonic()
            first = _matches_api(page, url, ("state", "pid", "generation", "restarts", "node-name"))
            print(f"\npage shows RUNNING {t_running - t_start:.1f} s after gswarm run started")
            assert first["node-name"] == "emu" and first["restarts"] == "0" and first["generation"] == "E6 (direct)"
            assert page.locator("#conn").text_content() == "live"
            # the crash 15 s into the first run and the supervisor's restart appear without reloading the page
            page.wait_for_function("document.querySelectorAll('#runs li').length >= 2", timeout=40000)
            page.wait_for_function("document.getElementById('restarts').textContent === '1'", timeout=20000)
            page.wait_for_function("[...document.querySelectorAll('#runs .cause')].some(e => e.textContent === 'dht_daemon_timeout')",
                                   timeout=10000)
            page.wait_for_function("document.getElementById('state').textContent === 'RUNNING'", timeout=30000)
            assert "dht_daemon_timeout" in page.locator("#incidents").inner_text()
            before = _matches_api(page, url, ("state", "pid", "restarts", "round"))
            page.wait_for_function("document.querySelectorAll('#log div').length > 5", timeout=10000)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            # press Restart: the page asks for the token, then a confirmation
            page.locator("#auth summary").click()
            page.fill("#token", (sd / "api_token").read_text().strip())
            page.locator("#token-form button").click()
            page.locator("#btn-restart").click()
            assert page.locator("#confirm").is_visible()
            page.locator("#confirm-ok").click()
            page.wait_for_function("document.getElementById('control-msg').textContent.startsWith('restart requested')",
                                   timeout=10000)
            page.wait_for_function(f"(() => {{ const p = document.getElementById('pid').textContent;"
                                   f" return p !== '{before['pid']}' && p !== '—'; }})()", timeout=30000)
            after = _matches_api(page, url, ("state", "pid"))
            assert after["pid"] != before["pid"] and after["state"] == "RUNNING"
            # RUNNING: Start does not apply (the API would answer 409), Stop and Restart do
            page.wait_for_function("(() => { const d = (id) => document.getElementById(id).disabled;"
                                   " return d('btn-start') && !d('btn-stop') && !d('btn-restart'); })()", timeout=10000)
            runs = httpx.get(f"{url}/api/v1/runs", params={"limit": 5}, timeout=10).json()["items"]
            assert str(runs[0]["pid"]) == after["pid"] and runs[1]["signal"] == 15  # the old run was stopped by SIGTERM
            # phone screen: nothing wider than the viewport
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
            phone.goto(url + "/")
            phone.wait_for_selector("body[data-ready='1']", timeout=15000)
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390
            assert phone.locator("#btn-restart").bounding_box()["width"] > 60
            phone.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
    print(f"\nscreenshots: {ARTIFACTS / 'dashboard.png'} {ARTIFACTS / 'dashboard-phone.png'}")

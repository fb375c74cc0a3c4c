"""The settings view: its API (``/api/v1/config/options``, ``/api/v1/config/check``) over real HTTP, and the
dashboard in headless Chromium — change an option, see the validation error next to the field, apply a good
value, and find it in the API and in ``gswarm options --current`` with its source; read-only ``gswarm serve``
shows the view without edit controls and without start/stop/restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from gswarm.api.auth import token_path
from tests.test_api_support import ThreadServer, bearer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _row(view: dict, name: str) -> dict:
    return next(o for o in view["options"] if o["name"] == name)


def test_options_view_and_check_over_http(state_dir) -> None:
    with ThreadServer(state_dir, live=True) as server:
        url = server.svc.url
        view = httpx.get(f"{url}/api/v1/config/options", timeout=10).json()
        assert (view["live"], view["editable"]) == (True, True)
        row = _row(view, "backoff_max")
        assert {k: row[k] for k in ("group", "kind", "default", "value", "source", "locked")} == {
            "group": "supervision", "kind": "duration", "default": 300.0, "value": 300.0, "source": "default", "locked": False}
        assert _row(view, "hf_token")["locked"] and _row(view, "profile")["locked"]
        token = token_path(state_dir).read_text().strip()
        assert httpx.post(f"{url}/api/v1/config/check", json={"swarm": "B"}, timeout=10).status_code == 401
        bad = httpx.post(f"{url}/api/v1/config/check", json={"backoff_max": "-5", "swarm": "C"}, headers=bearer(token),
                         timeout=10)
        assert bad.status_code == 422
        assert [(d["field"], d["message"]) for d in bad.json()["detail"]] == [
            ("swarm", "Input should be 'A' or 'B'"),
            ("backoff_max", "'-5' is not a duration; use seconds or e.g. 90s, 30m, 1h30m, 2d")]
        good = httpx.post(f"{url}/api/v1/config/check", json={"backoff_max": "10m", "swarm": "A"}, headers=bearer(token),
                          timeout=10).json()
        assert good == {"changes": [{"name": "backoff_max", "old": 300.0, "new": 600.0}]}  # swarm unchanged: not listed
        assert not (state_dir / "config_override.json").exists()  # check saves nothing
        saved = httpx.patch(f"{url}/api/v1/config", json={"backoff_max": "10m"}, headers=bearer(token), timeout=10)
        assert saved.status_code == 200 and saved.json()["override"] == {"backoff_max": 600.0}
        assert _row(httpx.get(f"{url}/api/v1/config/options", timeout=10).json(), "backoff_max")["pending"] == 600.0


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs the system Chromium (/usr/bin/chromium)")
def test_dashboard_settings_edit_validate_apply(state_dir, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    with ThreadServer(state_dir, live=True) as server, sync_playwright() as pw:
        url = server.svc.url
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")
            page.wait_for_selector("body[data-settings='1']", timeout=15000)
            page.locator("#settings-details summary").click()
            assert page.locator("#row-backoff_max .src").text_content() == "default"
            assert page.locator("#node-card .controls").is_visible()
            page.locator("#auth summary").click()  # saving needs the API token
            page.fill("#token", token_path(state_dir).read_text().strip())
            page.locator("#token-form button").click()
            # a bad value: the server's error appears next to the field, nothing is saved
            page.fill("#opt-backoff_max", "-5")
            page.locator("#settings-review").click()
            page.wait_for_function("document.getElementById('err-backoff_max').textContent !== ''", timeout=10000)
            assert page.locator("#err-backoff_max").text_content() == "Input should be greater than 0"
            assert not (state_dir / "config_override.json").exists()
            # a good value: the diff, then "apply on next restart"
            page.fill("#opt-backoff_max", "10m")
            page.locator("#settings-review").click()
            page.wait_for_selector("#settings-diff[open]", timeout=10000)
            assert page.locator("#settings-diff-list").inner_text().strip() == "backoff_max: 300 → 600"
            assert page.locator("#err-backoff_max").text_content() == ""
            page.locator("#settings-later").click()
            page.wait_for_function("document.getElementById('settings-msg').textContent === 'saved: applies on the next restart'",
                                   timeout=10000)
            page.wait_for_selector("#row-backoff_max .pending", timeout=10000)
            assert page.locator("#row-backoff_max .pending").text_content() == "next start: 600"
            # another change, applied with "restart now": saved, then the node's restart is requested
            page.select_option("#opt-restart_on_clean_exit", "false")
            page.locator("#settings-review").click()
            page.wait_for_selector("#settings-diff[open]", timeout=10000)
            assert page.locator("#settings-diff-list").inner_text().strip() == "restart_on_clean_exit: true → false"
            page.locator("#settings-now").click()
            page.wait_for_function("document.getElementById('settings-msg').textContent === 'saved; restart requested'",
                                   timeout=10000)
            cmd = server.runtime.commands.get_nowait()  # the server loop is idle: nothing else reads the queue
            assert (cmd.kind, cmd.source) == ("restart", "api")
            assert json.loads((state_dir / "config_override.json").read_text()) == {
                "backoff_max": 600.0, "restart_on_clean_exit": False}
            assert errors == []
        finally:
            browser.close()
    row = _row({"options": json.loads(subprocess.run(
        [sys.executable, "-m", "gswarm", "options", "--current", "--json", "--state-dir", str(state_dir), "backoff_max"],
        capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")},
        cwd=tmp_path).stdout)}, "backoff_max")
    assert (row["value"], row["source"]) == (600.0, "api override config_override.json")


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs the system Chromium (/usr/bin/chromium)")
def test_read_only_serve_shows_settings_without_controls(state_dir) -> None:
    from playwright.sync_api import sync_playwright

    with ThreadServer(state_dir) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(server.svc.url + "/")
            page.wait_for_selector("body[data-settings='1']", timeout=15000)
            page.locator("#settings-details summary").click()
            assert page.locator("#settings-mode").text_content() == "read-only (gswarm serve): no changes here"
            assert page.locator("#row-stall_timeout").is_visible()
            assert page.locator("#settings-body input, #settings-body select").count() == 0
            assert not page.locator("#settings-review").is_visible()
            assert not page.locator("#btn-restart").is_visible() and not page.locator("#btn-stop").is_visible()
        finally:
            browser.close()


def test_config_body_schema_allows_the_duration_strings_the_server_accepts() -> None:
    """The OpenAPI body of PUT/PATCH /config and POST /config/check says what the server takes: seconds options
    are a number or a duration string (before: numbers only, while "10m" was accepted)."""
    import re

    from gswarm.api import overrides
    from gswarm.api.openapi_doc import config_body_properties
    from gswarm.config import Settings
    from gswarm.config.durations import SCHEMA_PATTERN

    props = config_body_properties(Settings, overrides.LOCKED)
    assert props["backoff_max"]["anyOf"] == [{"exclusiveMinimum": 0, "type": "number"},
                                             {"type": "string", "pattern": SCHEMA_PATTERN}]
    assert props["stall_timeout"]["anyOf"][1:] == [{"type": "null"}, {"type": "string", "pattern": SCHEMA_PATTERN}]
    assert "profile" not in props and "hf_token" not in props
    for text, seconds in (("5", 5.0), ("10m", 600.0), ("1h30m", 5400.0), ("1w2d3h4m5s", 788645.0)):
        assert re.fullmatch(SCHEMA_PATTERN, text)
        assert overrides.validate(Settings(), {"backoff_max": text}) == {"backoff_max": seconds}
    for text in ("0", "0s", "1h1h", "30m1h", "", "1.5h"):  # narrower than the grammar, never wider
        assert not re.fullmatch(SCHEMA_PATTERN, text), text

"""Dashboard details a newcomer tripped over (issue #19), in headless Chromium over a read-only state dir.

Young-run charts fill their width, show current values with readable labels and hover values, a chart
with no GPU says why; one time format with the zone shown; the log's top line is not cut; an invalid
filter says so; the favicon exists; an operator's stop is shown as requested, not as a red failure.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import pytest

from gswarm import events as ev
from gswarm.logs.store import Store
from tests.test_api_support import NODE, ThreadServer, log_record, write_log

from tests.test_web_readonly import CHROMIUM, browser  # noqa: F401 (the module-scoped Chromium fixture)

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs the system Chromium (/usr/bin/chromium)")]
N = NODE  # the node the served settings name


def _young_run(state_dir: Path, now: float) -> None:
    """A run started 90 s ago (one requested stop before it), samples every 10 s, no GPU."""
    t = now - 400
    batch: list[ev.Event] = [
        ev.ProcessStarted(N, t, 10, 10, ("python",), "E4", "direct", 1),
        ev.ProcessExited(N, t + 300, 10, None, 15, 300.0, 1, requested="api"),
        ev.ProcessStarted(N, now - 90, 11, 11, ("python",), "E4", "direct", 2),
        ev.StateChanged(N, now - 89, ev.NodeState.STARTING, ev.NodeState.RUNNING, "started"),
    ]
    for i in range(9):
        batch.append(ev.ResourceSample(N, now - 85 + 10 * i, {"cpu_percent": 20.0 + i, "rss_bytes": 2 ** 30,
                                                            "host_cpu_percent": 40.0, "host_mem_percent": 50.0, "gpu": []}))
    store = Store(state_dir / "gswarm.db", now=now)
    store.write(sorted(batch, key=lambda e: e.ts))
    store.close()
    write_log(state_dir, [{**log_record(i, f"line {i}", node=N), "ts_unix": now - 60 + i} for i in range(40)])


def test_dashboard_details(browser, state_dir: Path) -> None:
    now = time.time()
    _young_run(state_dir, now)
    with ThreadServer(state_dir) as server:
        url = server.svc.url
        ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, timezone_id="Asia/Kolkata")
        page = ctx.new_page()
        failed: list[str] = []
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        page.wait_for_function("document.querySelector('#fig-cpu .now').textContent.includes('node')")

        # a young run fills the chart: the CPU line spans the width (before: the last ~10 % of a 15 min range)
        xs = page.evaluate("""() => document.querySelector('#chart-cpu polyline.a').getAttribute('points')
                                 .split(' ').map(p => Number(p.split(',')[0]))""")
        assert min(xs) == 0 and max(xs) == 600
        now_text = page.locator("#fig-cpu .now").text_content()
        assert re.fullmatch(r"\d\d:\d\d:\d\d · node 28% · host 40%", now_text), now_text
        assert page.locator("#fig-ram .now").text_content().endswith("node RSS 1.0 GiB · host 50%")
        # labels are page text at a readable size, not squashed SVG text
        size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#fig-cpu .axis span')).fontSize)")
        assert size >= 11 and page.locator("#fig-cpu .axis span").nth(1).text_content() == "max 40%"
        assert page.locator("#fig-gpu .now").text_content().startswith("no NVIDIA GPU found")
        # hover: the values at the pointer
        box = page.locator("#chart-cpu").bounding_box()
        page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
        assert page.locator("#fig-cpu .now").text_content().endswith("node 20% · host 40%")

        # one time format, local, the zone said once
        assert page.locator("#tz").text_content() == "times: UTC+05:30"
        starts = page.locator("#runs li strong").all_text_contents()
        assert starts and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", s) for s in starts), starts
        assert all(re.match(r"\d\d:\d\d:\d\d line \d+$", t) for t in page.locator("#log div").all_text_contents())

        # an operator's stop is "on request", grey, no cause; not "killed by signal 15" in red
        requested = page.locator("#runs li.requested")
        assert requested.count() == 1 and "stopped on request (api)" in requested.text_content()
        assert "killed by signal" not in page.locator("#runs").text_content()
        fills = page.evaluate("[...document.querySelectorAll('#timeline rect')].map(r => r.getAttribute('fill'))")
        assert "#f85149" not in fills

        # the log's top line is whole when scrolled to the end
        cut = page.evaluate("""() => { const b = document.getElementById('log'), top = b.getBoundingClientRect().top
                                 + parseFloat(getComputedStyle(b).borderTopWidth);
                               const first = [...b.children].find(r => r.getBoundingClientRect().bottom > top + 0.5);
                               return top - first.getBoundingClientRect().top; }""")
        assert cut <= 0.5, cut

        # filter: plain text matches literally; an invalid /regex/ says so
        page.fill("#log-filter", "line 3")
        page.wait_for_function("document.querySelectorAll('#log div').length === 11")  # line 3, line 30..39
        assert page.locator("#log-filter-msg").is_hidden()
        page.fill("#log-filter", "/(((/")
        page.wait_for_selector("#log-filter-msg:not([hidden])")
        assert page.locator("#log-filter-msg").text_content().startswith("invalid pattern:")
        page.fill("#log-filter", "")
        assert page.locator("#log-filter-msg").is_hidden()

        # favicon: served, nothing on the page answered an error
        icon = httpx.get(url + "/favicon.ico", timeout=10)
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
        assert failed == []
        ctx.close()

"""The visualisation in a real browser: `solara run server.py` driven by headless Chromium.

Needs Debian's Chromium at /usr/bin/chromium (``.ci/setup-tests`` installs it) and Playwright's
Python package; ``playwright install`` is not needed. Deselect with ``-m "not browser"``.

The server runs with ``--production`` so that a source file edited while the test runs
does not hot-reload the page under it (the page and its assets are the same). Every wait is
bounded; the server's process group is stopped even when the test fails. The final
screenshot lands in ``test-artifacts/visualisation.png`` (docs/screenshot.png is a copy
of a good one, made by hand).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SERVER_START_S = 120  # importing torch + mesa on a busy 2-core machine
WAIT_MS = 30_000  # any single thing the page must show
N_PANELS = 7
N_FIGURES = 6  # network + five plots; the seventh panel is a text summary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


@contextlib.contextmanager
def _solara_server() -> Iterator[str]:
    """`solara run server.py` on a free port in its own process group; yields its URL."""
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "solara-server.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "False"
    cmd = [sys.executable, "-m", "solara", "run", "server.py", "--host", "127.0.0.1",
           "--port", str(port), "--no-check-version", "--no-open", "--production"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"solara exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"solara did not serve {url} in {SERVER_START_S} s:\n"
                            f"{_tail(log_path)}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _counter(step: int | None = None) -> re.Pattern:
    """Mesa's counter in the sidebar: "Step: 3" (mesa 3.3, model.steps) or "Time: 3.0"
    (mesa 3.4+, model.time); any value when ``step`` is None."""
    value = r"\d+(\.0)?" if step is None else rf"{step}(\.0)?"
    return re.compile(rf"^(Step|Time): {value}$")


def _wait_for_step(page, step: int) -> None:
    """Mesa's step counter (sidebar) and our summary panel both show ``step``."""
    page.get_by_text(_counter(step)).first.wait_for(timeout=WAIT_MS)
    page.get_by_text(f"t = {step} steps completed").wait_for(timeout=WAIT_MS)


def _wait_for_figures(page) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('.vue-grid-item img').length >= {N_FIGURES}",
        timeout=WAIT_MS)


def _wait_until_changed(locator, before: bytes) -> bytes:
    """The element's pixels once they differ from ``before`` (bounded poll)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        now = locator.screenshot(timeout=WAIT_MS)
        if now != before or time.monotonic() > deadline:
            return now
        time.sleep(0.25)


def _click(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click(timeout=WAIT_MS)


def _set_text(page, label: str, value: str) -> None:
    box = page.get_by_label(label)
    box.fill(value, timeout=WAIT_MS)
    box.press("Enter")  # solara's InputText sends its value on Enter or blur


def _select(page, label: str, option: str) -> None:
    label_re = re.compile(f"^{re.escape(label)}$")
    page.locator(".v-select", has=page.locator("label", has_text=label_re)).click(
        timeout=WAIT_MS)
    page.get_by_role("option", name=option, exact=True).click(timeout=WAIT_MS)


@pytest.mark.timeout(300)
def test_page_renders_offline_steps_resets_and_shows_errors():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/setup-tests), "
                    "or deselect the browser tests with -m 'not browser'")
    from playwright.sync_api import sync_playwright

    outside, failed = [], []
    with _solara_server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1700})
            local = urlparse(url).netloc

            def offline_only(route):  # the page must need nothing from the internet
                if urlparse(route.request.url).netloc in (local, ""):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", offline_only)
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                    if r.status >= 400 else None)
            page.goto(url, timeout=WAIT_MS)

            # the network view and the plots are drawn
            page.get_by_text(_counter()).first.wait_for(timeout=WAIT_MS)
            _wait_for_figures(page)
            panels = page.locator(".vue-grid-item")
            assert panels.count() >= N_PANELS
            network, prices = panels.nth(0), panels.nth(1)

            # the model is shared between sessions: start from a fresh one
            _click(page, "Reset")
            _wait_for_step(page, 0)
            _wait_for_figures(page)
            network_before = network.screenshot(timeout=WAIT_MS)
            prices_before = prices.screenshot(timeout=WAIT_MS)
            for step in (1, 2, 3):
                _click(page, "Step")
                _wait_for_step(page, step)
            assert _wait_until_changed(prices, prices_before) != prices_before
            assert _wait_until_changed(network, network_before) != network_before

            # a bad control gives a readable message in the page, not a trace or a blank
            agents = "Agents N (blank: scenario's value)"
            _set_text(page, agents, "abc")
            _click(page, "Reset")
            message = page.get_by_text("Invalid parameters: n_agents='abc' is invalid")
            message.first.wait_for(timeout=WAIT_MS)
            assert "Traceback" not in page.inner_text("body")
            page.wait_for_function(  # no figure is drawn for a model that does not exist
                "document.querySelectorAll('.vue-grid-item img').length === 0",
                timeout=WAIT_MS)

            # change controls (a select and a text box), Reset, and run the new economy
            _select(page, "Scenario", "resource_network")
            _set_text(page, agents, "40")
            _click(page, "Reset")
            _wait_for_step(page, 0)
            page.get_by_text("resource_network · policy random · N = 40 agents · M = 3 assets"
                             ).wait_for(timeout=WAIT_MS)
            _wait_for_figures(page)
            prices_before = prices.screenshot(timeout=WAIT_MS)
            for step in range(1, 9):
                _click(page, "Step")
                _wait_for_step(page, step)
            assert _wait_until_changed(prices, prices_before) != prices_before
            page.wait_for_timeout(500)  # let the last figures land before the picture
            shot = ARTIFACTS / "visualisation.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 50_000
        finally:
            browser.close()
    assert outside == [], f"the page fetched from outside localhost: {outside}"
    assert failed == [], f"failed requests: {failed}"

"""The visualisation in a real browser: `solara run server.py` driven by headless Chromium.

Needs Debian's Chromium at /usr/bin/chromium (``.ci/setup-tests`` installs it) and Playwright's
Python package; ``playwright install`` is not needed. Deselect with ``-m "not browser"``.

The server runs with ``--production`` so that a source file edited while the test runs
does not hot-reload the page under it (the page and its assets are the same). Every wait is
bounded; the server's process group is stopped even when the test fails. The final
screenshot lands in ``test-artifacts/visualisation.png`` (docs/screenshot.png is a copy
of a good one, made by hand).

The Play test measures and prints the page's Play rate (steps/s) at N = 100 with every
panel live; it asserts no speed (``benchmarks/viz_play.py`` holds the 5 steps/s target and
drives the page with the helpers here).
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
TITLE = "mesa_econ: bonding-curve economy"
AGENTS = "Agents N (blank: scenario's value)"


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
    box = page.get_by_label(label, exact=True)
    box.fill(value, timeout=WAIT_MS)
    box.press("Enter")  # solara's InputText sends its value on Enter or blur


def _select(page, label: str, option: str) -> None:
    label_re = re.compile(f"^{re.escape(label)}$")
    page.locator(".v-select", has=page.locator("label", has_text=label_re)).click(
        timeout=WAIT_MS)
    page.get_by_role("option", name=option, exact=True).click(timeout=WAIT_MS)


def _step_now(page) -> int:
    """The step Mesa's counter shows now."""
    text = page.get_by_text(_counter()).first.inner_text(timeout=WAIT_MS)
    return int(float(text.split(":")[1]))


def _figure_sources(page) -> list[str]:
    """The ``src`` of every figure image (a new blob URL each time a figure is redrawn)."""
    return page.eval_on_selector_all(".vue-grid-item img", "imgs => imgs.map(i => i.src)")


def check_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/setup-tests), "
                    "or deselect the browser tests with -m 'not browser'")


@contextlib.contextmanager
def offline_page(pw, url: str) -> Iterator:
    """A headless Chromium page on ``url`` that may fetch nothing beyond localhost; asserts
    on exit that it did not try and that no local request failed."""
    outside, failed = [], []
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
        page.get_by_text(_counter()).first.wait_for(timeout=WAIT_MS)
        _wait_for_figures(page)
        yield page
    finally:
        browser.close()
    assert outside == [], f"the page fetched from outside localhost: {outside}"
    assert failed == [], f"failed requests: {failed}"


def reset_with_agents(page, n_agents: int) -> None:
    """Fresh model of the default scenario with ``n_agents`` (the model is shared)."""
    _set_text(page, AGENTS, str(n_agents))
    _click(page, "Reset")
    _wait_for_step(page, 0)
    page.get_by_text(f"N = {n_agents} agents").wait_for(timeout=WAIT_MS)
    _wait_for_figures(page)


def measure_play_rate(page, seconds: float, warm_up: int = 3) -> dict[str, float]:
    """Press Play, skip ``warm_up`` steps, count the steps the page shows in ``seconds``,
    press Pause. Returns steps/s, the steps counted, the seconds, and how many of the
    figures were redrawn during Play."""
    before = _figure_sources(page)
    start_step = _step_now(page)
    _click(page, "▶")
    deadline = time.monotonic() + WAIT_MS / 1000
    while _step_now(page) < start_step + warm_up:  # the counter may skip values
        if time.monotonic() > deadline:
            pytest.fail(f"Play did not reach step {start_step + warm_up} in {WAIT_MS} ms")
        page.wait_for_timeout(50)
    first, t0 = _step_now(page), time.monotonic()
    page.wait_for_timeout(seconds * 1000)
    last, t1 = _step_now(page), time.monotonic()
    _click(page, "❚❚")
    after = _figure_sources(page)
    redrawn = sum(a != b for a, b in zip(after, before, strict=True))
    return {"steps_per_s": (last - first) / (t1 - t0), "steps": last - first,
            "seconds": t1 - t0, "figures_redrawn": redrawn, "figures": len(after)}


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    check_chromium()
    with _solara_server() as url:
        yield url


@pytest.mark.timeout(300)
def test_page_renders_offline_steps_resets_shocks_and_shows_errors(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, offline_page(pw, server_url) as page:
        assert page.title() == TITLE  # the browser tab, not "Solara"
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

        # the shock button: the chosen size, now (it hits the coming step)
        _set_text(page, "Size of the shock (added to Z now)", "-2.5")
        _click(page, "Shock now")
        page.get_by_text("Shock of -2.5 added to Z of every asset at t = 3: it hits step 4."
                         ).wait_for(timeout=WAIT_MS)
        _click(page, "Step")
        _wait_for_step(page, 4)

        # a bad control gives a readable message in the page, not a trace or a blank
        _set_text(page, AGENTS, "abc")
        _click(page, "Reset")
        message = page.get_by_text("Invalid parameters: n_agents='abc' is invalid")
        message.first.wait_for(timeout=WAIT_MS)
        assert "Traceback" not in page.inner_text("body")
        page.wait_for_function(  # no figure is drawn for a model that does not exist
            "document.querySelectorAll('.vue-grid-item img').length === 0",
            timeout=WAIT_MS)

        # change controls (a select and a text box), Reset, and run the new economy
        _select(page, "Scenario", "resource_network")
        _set_text(page, AGENTS, "40")
        _click(page, "Reset")
        _wait_for_step(page, 0)
        page.get_by_text("resource_network · policy actor_critic · N = 40 agents · M = 3 assets"
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


@pytest.mark.timeout(300)
def test_play_rate_at_100_agents_with_every_panel_live(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, offline_page(pw, server_url) as page:
        reset_with_agents(page, 100)
        result = measure_play_rate(page, seconds=8.0)
        print(f"\nPlay rate at N = 100, every panel live: {result['steps_per_s']:.2f} steps/s "
              f"({result['steps']} steps in {result['seconds']:.1f} s)")
        (ARTIFACTS / "play_rate.txt").write_text(f"{result['steps_per_s']:.3f}\n")
        assert result["steps"] > 0
        assert result["figures"] == N_FIGURES
        assert result["figures_redrawn"] == N_FIGURES  # every figure moved during Play
        page.wait_for_timeout(500)  # a step in flight when Pause was pressed lands
        _wait_for_step(page, _step_now(page))  # the summary caught up with the counter

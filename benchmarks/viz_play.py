"""The browser page's Play rate at N = 100 with every panel live, against the 5 steps/s target.

Two measurements:

- ``browser`` (the target's): ``solara run server.py`` and headless Chromium, driven with the
  browser test's own helpers (``tests/test_browser.py``): Reset with N = 100 agents
  (defi_token_market), press Play (the page's PLAY_INTERVAL_MS between steps, 50 ms;
  Mesa's default is 100 ms), count the steps the page shows over ``--seconds``, press
  Pause; ``--repeats`` times, median. It checks that all six figures were redrawn during Play.
- ``server`` (why this design): the server's own time per step, in one process without a
  browser (``solara.render``): model.step() and Mesa's step counter update, which redraws
  the panels. Three pages over the same model: this page (figures updated in place and
  blitted, one listener), Mesa's matplotlib components (what the page used before: each
  figure rebuilt and saved as PNG per step), and Mesa's Altair components for the five
  plots (the network stays matplotlib: Mesa's Altair drawer has no network). The Altair
  time is the server's part only; the browser then re-embeds every Vega chart.

    python benchmarks/viz_play.py [--seconds 10] [--repeats 3] [--skip-browser]
                                  [--server-steps 30] [--json PATH]

Target (issue 12, item 4): >= 5 steps/s on Play at N = 100, every panel live. Exit status 1
when the browser's median is below it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "False"

ROOT = Path(__file__).resolve().parents[1]
TARGET = 5.0
"""Steps per second on Play at N = 100 (issue 12, item 4)."""
N_AGENTS = 100


def browser_rates(seconds: float, repeats: int) -> list[dict[str, float]]:
    """Play rates measured in Chromium against a fresh ``solara run server.py``."""
    spec = importlib.util.spec_from_file_location("mesa_econ_browser_test",
                                                  ROOT / "tests" / "test_browser.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    from playwright.sync_api import sync_playwright

    driver.check_chromium()
    results = []
    with driver._solara_server() as url, sync_playwright() as pw, \
            driver.offline_page(pw, url) as page:
        for _ in range(repeats):
            driver.reset_with_agents(page, N_AGENTS)
            results.append(driver.measure_play_rate(page, seconds=seconds))
    return results


def _mesa_pages(backend: str) -> list:
    """The six figure panels as Mesa's own components (``backend`` for the five plots)."""
    from mesa.visualization import make_plot_component, make_space_component

    from mesa_econ.viz import network_layout_kwargs, network_portrayal

    def network(model):
        portrayal, _ = network_portrayal(model)
        draw = make_space_component(portrayal, backend="matplotlib",
                                    **network_layout_kwargs(model))
        return draw(model)

    def prices(model):
        measure = {}
        for j in range(model.n_assets):
            measure[f"price_{j}"] = measure[f"curve_price_{j}"] = f"C{j % 10}"
        return make_plot_component(measure, backend=backend)[0](model)

    plots = [make_plot_component(measure, backend=backend)[0] for measure in (
        {"hhi": "tab:purple", "gini": "tab:orange"}, "price_entropy", "volatility",
        "reserve_coverage")]
    return [network, prices, *plots]


def server_ms_per_step(page_kind: str, steps: int, warm_up: int = 10) -> float:
    """Median ms per step (model.step + the panels' redraw) of one page, no browser."""
    import solara
    import torch
    from mesa.visualization import SolaraViz
    from mesa.visualization.utils import force_update

    from mesa_econ.viz import VizEconomyModel, make_page, model_params

    torch.set_num_threads(1)
    model = VizEconomyModel(n_agents=str(N_AGENTS))
    if page_kind == "this page":
        element = make_page(model)
    else:
        backend = "altair" if "Altair" in page_kind else "matplotlib"
        element = SolaraViz(model, components=[(c, 0) for c in _mesa_pages(backend)],
                            model_params=model_params(), name="benchmark")
    _box, context = solara.render(element, handle_error=False)
    times = []
    try:
        for k in range(warm_up + steps):
            start = time.perf_counter()
            model.step()
            force_update()  # what Mesa's Play loop does after each step
            if k >= warm_up:
                times.append(time.perf_counter() - start)
    finally:
        context.close()
    return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="Play time counted")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--server-steps", type=int, default=30,
                        help="steps timed per page in the server-side comparison (0: skip)")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)  # solara's hook linter on Mesa

    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "python": platform.python_version(), "load_before": os.getloadavg()}
    import mesa

    meta["mesa"] = mesa.__version__
    print(f"{meta['date']} · {meta['machine']} · Python {meta['python']} · mesa "
          f"{meta['mesa']} · load average {meta['load_before'][0]:.2f}")

    server = {}
    if args.server_steps > 0:
        print(f"\nServer time per step, N = {N_AGENTS}, no browser "
              f"(median of {args.server_steps} steps):")
        for kind in ("this page", "Mesa matplotlib components", "Mesa Altair components"):
            try:
                server[kind] = server_ms_per_step(kind, args.server_steps)
                print(f"  {kind:<28} {server[kind]:8.1f} ms")
            except Exception as exc:  # an optional comparison must not hide the target
                server[kind] = None
                print(f"  {kind:<28} failed: {type(exc).__name__}: {exc}")

    rates: list[dict[str, float]] = []
    status = 0
    if not args.skip_browser:
        rates = browser_rates(args.seconds, args.repeats)
        median = statistics.median(r["steps_per_s"] for r in rates)
        from mesa_econ.viz.panels import PLAY_INTERVAL_MS

        print(f"\nPlay in Chromium, N = {N_AGENTS}, every panel live, "
              f"{PLAY_INTERVAL_MS} ms Play interval:")
        for r in rates:
            print(f"  {r['steps_per_s']:5.2f} steps/s ({r['steps']} steps in {r['seconds']:.1f} s,"
                  f" {r['figures_redrawn']}/{r['figures']} figures redrawn)")
        ratio = median / TARGET
        met = median >= TARGET and all(r["figures_redrawn"] == r["figures"] for r in rates)
        print(f"  median {median:.2f} steps/s = {ratio:.2f}x the {TARGET:g} steps/s target: "
              f"{'met' if met else 'NOT met'}")
        status = 0 if met else 1
    meta["load_after"] = os.getloadavg()
    print(f"load average after: {meta['load_after'][0]:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"meta": meta, "server_ms_per_step": server, "browser": rates,
                       "target_steps_per_s": TARGET}, fh, indent=2)
    return status


if __name__ == "__main__":
    sys.exit(main())

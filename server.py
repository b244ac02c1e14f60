"""Browser visualisation of mesa_econ: ``solara run server.py`` (see docs/visualisation.md).

Serves Mesa's SolaraViz page (:mod:`mesa_econ.viz`) for
:class:`mesa_econ.viz.VizEconomyModel`: the interaction network, price against the bonding
curve, concentration, entropy, volatility and reserve coverage, updated in place on every
step, a summary with a shock button, and the scenario and the market parameters as
controls. Works offline with the ``mesa_econ[viz]`` pins; solara's usage telemetry is
switched off here.
"""

import os
import sys

# Off before solara is imported (python -c "import server", notebooks) ...
os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "False"

import solara.checks
import solara.server.settings

# ... and after: `solara run` imports solara (and reads the variable) before this file.
solara.server.settings.telemetry.mixpanel_enable = False
# Development mode also embeds a one-time install check that loads a page from solara.dev.
solara.checks.should_perform_solara_check = lambda: False

from mesa_econ.viz.controls import VizEconomyModel  # noqa: E402
from mesa_econ.viz.panels import make_page  # noqa: E402


def _reload_only_this_project() -> None:
    """Keep solara's development-mode hot reload to mesa_econ's own modules.

    On a code change solara drops every module whose file lies under this directory, which
    includes a virtual environment inside the clone (``.venv``, as ``.ci/setup`` makes it):
    numpy's C extensions cannot be imported twice, so the page broke until a restart.
    """
    reload = sys.modules.get("solara.server.reload")  # loaded only under `solara run`
    reloader = getattr(reload, "reloader", None)
    if reloader is None or getattr(reloader, "mesa_econ_filter", False):
        return  # not served, or already filtered (server.py runs again on each reload)
    names = reloader.get_reload_module_names
    reloader.get_reload_module_names = lambda: [
        name for name in names() if name.split(".")[0] == "mesa_econ"]
    reloader.mesa_econ_filter = True


_reload_only_this_project()

model = VizEconomyModel()
"""The model every new browser session starts from (shared: press Reset for a fresh one)."""

page = make_page(model)

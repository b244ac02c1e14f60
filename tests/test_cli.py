"""`mesa-econ`: the router, --help without torch, and `demo` writing its results."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from mesa_econ.cli import _PLUGINS, main


@pytest.mark.parametrize("scenario", ["defi_token_market", "resource_network", "shock_recovery"])
def test_demo_writes_frame_plot_and_summary(tmp_path, scenario):
    out = tmp_path / scenario
    assert main(["demo", "--scenario", scenario, "--steps", "12", "--seed", "3",
                 "--out", str(out)]) == 0
    frame = pd.read_csv(out / "model_vars.csv", index_col="step")
    assert len(frame) == 13 and frame.notna().all().all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == scenario and summary["steps"] == 12
    assert len(summary["final_prices"]) == summary["n_assets"]
    assert (out / "prices.png").stat().st_size > 10_000


def test_demo_is_deterministic(tmp_path):
    for name in ("a", "b"):
        main(["demo", "--steps", "8", "--seed", "5", "--out", str(tmp_path / name)])
    assert (tmp_path / "a" / "model_vars.csv").read_text() == \
        (tmp_path / "b" / "model_vars.csv").read_text()


def test_demo_rejects_bad_input(tmp_path, capsys):
    assert main(["demo", "--policy", "greedy", "--steps", "2", "--out", str(tmp_path)]) == 2
    assert "policy" in capsys.readouterr().err


# ------------------------------------------------------------------ the router and --help

_HELP_IMPORTS = """
import contextlib, io, json, sys
from mesa_econ.cli import _PLUGINS, main
commands = ["demo", *_PLUGINS]
texts = {}
for argv in ([], *([name] for name in commands)):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([*argv, "--help"])
    texts[" ".join(argv) or "mesa-econ"] = out.getvalue()
print(json.dumps({"torch": "torch" in sys.modules,
                  "texts": texts}))
"""


def test_help_does_not_import_torch():
    """``mesa-econ --help`` and every subcommand's --help answer without importing torch
    (seconds on a busy machine); the subcommand modules import it when a command runs."""
    out = subprocess.run([sys.executable, "-c", _HELP_IMPORTS], capture_output=True,
                         text=True, check=True, timeout=120)
    result = json.loads(out.stdout)
    assert result["torch"] is False
    texts = result["texts"]
    assert set(texts) == {"mesa-econ", "demo", *_PLUGINS}
    for name, text in texts.items():
        assert text.startswith("usage: mesa-econ"), name
        assert "unavailable" not in text, name


def test_demo_help_gives_every_option_a_help_text_and_its_default():
    text = _help("demo")
    assert "``" not in text and ":class:" not in text  # no RST markup in a terminal
    options = re.findall(r"^  (--[\w-]+)", text, re.M)
    assert options == ["--scenario", "--steps", "--seed", "--policy", "--n-agents", "--out"]
    for option, default in [("--scenario", "defi_token_market"), ("--steps", "200"),
                            ("--seed", "0"), ("--policy", "random"),
                            ("--n-agents", "the scenario's own"), ("--out", "results/demo")]:
        entry = text.split(option, 2)[-1].split("\n  --")[0]  # the option's own entry
        assert f"(default: {default})" in " ".join(entry.split()), option


@pytest.mark.parametrize("argv", [["--steps", "-5"], ["--steps", "0"], ["--steps", "x"],
                                  ["--n-agents", "0"]])
def test_demo_rejects_bad_counts_before_any_work(tmp_path, capsys, argv):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exc:
        main(["demo", *argv, "--out", str(out)])
    assert exc.value.code == 2
    assert argv[0] in capsys.readouterr().err
    assert not out.exists()


def _help(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*argv, "--help"])
    return out.getvalue()

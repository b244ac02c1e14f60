"""`mesa-econ demo`: the README's main command writes its results."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mesa_econ.cli import main


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

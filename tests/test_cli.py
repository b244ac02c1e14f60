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


# ------------------------------------------------------------------ one package, one way in

def _no_work(*args, **kwargs):
    raise AssertionError("work started before --out was checked")


# command -> (argv before --out, where its work starts)
_COMMANDS = {
    "demo": (["demo", "--steps", "2"], "mesa_econ.scenarios.build_model"),
    "train": (["train", "defi_token_market", "--iterations", "1", "--n-agents", "5",
               "--eval-seeds", "1", "--eval-steps", "2", "--no-progress"],
              "mesa_econ.model.EconomyModel._init_from_config"),
    "sweep": (["sweep", "--param", "n_agents=5", "--seeds", "1", "--steps", "2",
               "--no-progress"], "mesa_econ.sweep.run_sweep"),
    "reproduce": (["reproduce", "--quick", "--no-progress"],
                  "mesa_econ.experiments.run_reproduction"),
    "tune": (["tune", "defi_token_market", "--trials", "1", "--no-progress"], None),
    "stability": (["stability", "defi_token_market", "--no-progress"],
                  "mesa_econ.analysis.stability.run_stability"),
    "nash": (["nash", "no/such/checkpoint", "--no-progress"], None),
}


@pytest.mark.parametrize("command", list(_COMMANDS))
def test_every_command_checks_out_before_any_work(tmp_path, monkeypatch, capsys, command):
    """An --out that cannot be a directory (its parent is a file) fails in one line, exit
    status 2, before the command builds a model, trains or runs anything."""
    argv, work = _COMMANDS[command]
    if work is not None:
        monkeypatch.setattr(work, _no_work)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main([*argv, "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {str(blocker / 'run')!r} is invalid: not a "
                          "writable directory")
    assert err.count("\n") == 1


def test_every_command_has_its_own_module_in_the_cli_package():
    assert set(_COMMANDS) == set(_PLUGINS)
    assert _PLUGINS == {name: f"mesa_econ.cli.{name}" for name in _COMMANDS}


@pytest.mark.parametrize("argv", [
    ["train", "defi_token_market", "--iterations", "0"],
    ["train", "defi_token_market", "--iterations", "-5"],
    ["train", "defi_token_market", "--eval-steps", "-5"],
    ["train", "defi_token_market", "--eval-seeds", "0"],
    ["train", "defi_token_market", "--n-agents", "-1"],
    ["train", "defi_token_market", "--seed", "-1"],
    ["sweep", "--steps", "-5"],
    ["sweep", "--steps", "0"],
    ["sweep", "--seeds", "-3"],
    ["sweep", "--seeds", "0"],
    ["sweep", "--processes", "0"],
    ["sweep", "--base-seed", "-1"],
    ["demo", "--seed", "-1"],
    ["reproduce", "--seeds", "0"],
    ["tune", "defi_token_market", "--trials", "0"],
    ["tune", "defi_token_market", "--seeds", "1"],
    ["stability", "defi_token_market", "--steps", "-5"],
    ["stability", "defi_token_market", "--bins", "1"],
    ["nash", "ckpt", "--br-seeds", "0"],
    ["nash", "ckpt", "--grad-episodes", "-1"],
])
def test_negative_and_zero_counts_are_refused_by_the_parser(tmp_path, monkeypatch, capsys,
                                                            argv):
    """argparse names the option and the valid range; nothing runs, nothing is written.
    (train, sweep and demo took these before; the other commands' bounds are those their
    analyses check.)"""
    monkeypatch.setattr("mesa_econ.model.EconomyModel._init_from_config", _no_work)
    monkeypatch.setattr("mesa_econ.sweep.run_sweep", _no_work)
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[-2]}: " in err and "is invalid: expected" in err
    assert not out.exists()


def test_domain_modules_never_import_cli_code():
    """Only the cli package (and the two deprecated shims that re-export it) may import
    mesa_econ.cli, mesa_econ.sweep_cli or mesa_econ.rl.cli."""
    import ast
    from pathlib import Path

    import mesa_econ

    root = Path(mesa_econ.__file__).parent
    shims = {root / "sweep_cli.py", root / "rl" / "cli.py"}
    cli = ("mesa_econ.cli", "mesa_econ.sweep_cli", "mesa_econ.rl.cli")
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if root / "cli" in path.parents or path in shims:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(root)}: {n}" for n in names
                          if n.startswith(cli) or n in ("cli", "sweep_cli")]
    assert offenders == []


@pytest.mark.parametrize(("old", "new", "names"), [
    ("mesa_econ.rl.cli", "mesa_econ.cli.train",
     ["add_parser", "compare_arms", "run_training", "BASELINES"]),
    ("mesa_econ.sweep_cli", "mesa_econ.cli.sweep",
     ["per_run_means", "plot_summary", "write_outputs"]),
])
def test_old_cli_paths_still_work_with_a_deprecation_warning(monkeypatch, old, new, names):
    import importlib

    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=new):
        module = importlib.import_module(old)
    target = importlib.import_module(new)
    for name in names:
        assert getattr(module, name) is getattr(target, name)


def test_run_demo_keeps_its_import_path(tmp_path):
    from mesa_econ.cli import run_demo
    from mesa_econ.cli.demo import run_demo as moved

    assert run_demo is moved
    summary = run_demo("defi_token_market", 3, 0, tmp_path / "d")
    assert summary["steps"] == 3 and (tmp_path / "d" / "summary.json").is_file()

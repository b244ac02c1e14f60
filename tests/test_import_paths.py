"""Import paths of the split modules: ``mesa_econ.metrics``, ``mesa_econ.experiments`` and
``mesa_econ.settlement`` became packages (one module per idea); every public name keeps
its old path, and the metrics stay pure maths (no Mesa, no torch)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

# The public names each single-file module defined at commit aa6d37a (its `dir()` less
# `_`-names and the names it merely imported: np, npt, pd, Any, Path, time, ...).
OLD_NAMES = {
    "mesa_econ.metrics": [
        "CLOGC_MAX", "FloatArray", "bin_counts", "clogc_table", "drift", "entropy_kernel",
        "gini", "gini_kernel", "gini_weights", "hhi", "hhi_kernel", "level_variance",
        "log_returns", "pre_shock_band", "price_entropy", "recovery_time",
        "reserve_coverage", "resilience", "shock_recovery", "used_units", "utilisation",
        "volatility",
    ],
    "mesa_econ.experiments": [
        "ARMS", "Arm", "CLAIMS", "Claim", "EVAL_SEED_BASE", "POPULATION_SEED",
        "PROFIT_MARKS", "RECOVERY_BAND", "RECOVERY_HOLD", "RECOVERY_WINDOW", "RunPlan",
        "arm_table", "baseline_returns", "claim_params", "config_hash", "evaluate_arm",
        "learnability", "pump_check", "reward_shares", "run_reproduction",
        "scenario_checks", "summarise_claim", "work_units",
    ],
    "mesa_econ.settlement": [  # at 0.3.1's first commits
        "cap_buys_to_room", "column_sums", "scale_buys_to_budget", "settle_curve",
        "settle_spot",
    ],
}
# Their `__all__` at the same commit (what `from ... import *` gives).
OLD_ALL = {
    "mesa_econ.metrics": [
        "CLOGC_MAX", "bin_counts", "clogc_table", "drift", "entropy_kernel", "gini",
        "gini_kernel", "gini_weights", "hhi", "hhi_kernel", "level_variance", "log_returns",
        "pre_shock_band", "price_entropy", "recovery_time", "reserve_coverage", "resilience",
        "shock_recovery", "used_units", "utilisation", "volatility",
    ],
    "mesa_econ.experiments": ["ARMS", "CLAIMS", "Arm", "Claim", "RunPlan", "evaluate_arm",
                              "run_reproduction", "summarise_claim"],
    "mesa_econ.settlement": ["cap_buys_to_room", "column_sums", "scale_buys_to_budget",
                             "settle_curve", "settle_spot"],
}
# Private names other modules import from the old single-file paths (dynamics, fast_step,
# tests): kept there too.
OLD_PRIVATE = {"mesa_econ.settlement": ["_BUDGET_MARGIN", "_MONEY_TINY", "_budget_binds",
                                        "_settle_curve", "_settle_spot"]}


def _submodules(package: str) -> list[str]:
    module = importlib.import_module(package)
    return [f"{package}.{info.name}" for info in pkgutil.iter_modules(module.__path__)]


@pytest.mark.parametrize("package", list(OLD_NAMES))
def test_every_old_public_name_keeps_its_path(package):
    module = importlib.import_module(package)
    missing = [name for name in OLD_NAMES[package] if not hasattr(module, name)]
    assert missing == []
    assert set(OLD_NAMES[package]) <= set(dir(module))
    assert module.__all__ == OLD_ALL[package]
    assert [n for n in OLD_PRIVATE.get(package, []) if not hasattr(module, n)] == []


@pytest.mark.parametrize("package", list(OLD_NAMES))
def test_old_path_gives_the_submodules_own_objects(package):
    """One object per name: the package re-exports, it does not copy (a monkeypatch or an
    identity check through either path sees the same thing)."""
    module = importlib.import_module(package)
    homes = {}
    for sub in _submodules(package):
        for name, value in vars(importlib.import_module(sub)).items():
            if name in OLD_NAMES[package] and getattr(value, "__module__", sub) == sub:
                homes[name] = value
    callables = [n for n in OLD_NAMES[package] if callable(getattr(module, n))
                 and n != "FloatArray"]
    assert set(callables) <= set(homes)
    for name in callables:
        assert getattr(module, name) is homes[name], name


@pytest.mark.parametrize("package", list(OLD_NAMES))
def test_split_modules_stay_under_400_lines(package):
    """STYLE.md: modules under ~400 lines; the split is what keeps these there."""
    for sub in _submodules(package):
        path = Path(importlib.import_module(sub).__file__)
        assert len(path.read_text().splitlines()) <= 400, path


def test_metrics_modules_import_neither_mesa_nor_torch():
    """STYLE.md: metrics are pure maths; checked in each file's imports and at run time."""
    import mesa_econ.metrics

    root = Path(mesa_econ.metrics.__file__).parent
    files = sorted(root.glob("*.py"))
    assert {p.stem for p in files} >= {"__init__", "holdings", "kernels", "prices",
                                       "resources", "shocks"}
    offenders = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names
                          if n.split(".")[0] in ("mesa", "torch")
                          or n.startswith(("mesa_econ.model", "mesa_econ.rl",
                                           "mesa_econ.policies"))]
    assert offenders == []


@pytest.mark.parametrize("package", list(OLD_NAMES))
def test_importing_the_package_loads_neither_mesa_nor_torch(package):
    """A fresh interpreter: importing the package (all its submodules) pulls in neither
    Mesa nor torch; experiments import them only when they run a model."""
    code = (f"import sys, {package}; "
            "print(sorted(m for m in ('mesa', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_validating_reporters_loads_neither_mesa_nor_torch():
    """A fresh interpreter: a ModelConfig with a reporters= choice (valid or not) is
    validated without importing Mesa (the names live in mesa_econ.reporter_sets)."""
    code = ("import sys\n"
            "from mesa_econ.config import ModelConfig\n"
            "ModelConfig(reporters=('gini', 'price'))\n"
            "try:\n"
            "    ModelConfig(reporters='fast')\n"
            "except ValueError as e:\n"
            "    print(str(e).split(':')[0])\n"
            "print(sorted(m for m in ('mesa', 'torch') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.splitlines() == ["reporters='fast' is invalid", "[]"]


def test_collector_reexports_the_reporter_sets():
    import mesa_econ.collector as collector
    import mesa_econ.reporter_sets as sets

    for name in sets.__all__:
        assert getattr(collector, name) is getattr(sets, name), name
        assert name in collector.__all__

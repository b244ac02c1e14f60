"""The install and CI scripts keep the README's promises.

The README's first command installs the package for running it, nothing more; CI runs
exactly the README's test command; the test command covers both supported stacks and
does not pass when no test ran.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", README, re.S)]


def _commands(script: str) -> list[str]:
    """The script's command lines (comments and blank lines dropped)."""
    lines = (ROOT / ".ci" / script).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_first_command_installs_the_package_and_rl_extra_only():
    assert _bash_blocks()[0].startswith("bash .ci/setup && ")
    setup = "\n".join(_commands("setup"))
    assert re.findall(r'pip install -q -e "(\.\[[\w,]*\])"', setup) == [".[rl]"]
    assert "torch==2.13.0" in setup
    for never in ("apt-get", "chromium", "[all]", "viz", "test", "distributed", "ray"):
        assert never not in setup, never


def test_ci_runs_exactly_the_readme_test_command():
    run = _commands("run")
    test_command = next(b for b in _bash_blocks() if "pytest" in b or ".ci/test" in b)
    assert run[-1] == test_command == "bash .ci/setup-tests && bash .ci/test"


def test_the_test_command_covers_both_stacks_and_fails_on_no_tests():
    setup_tests = "\n".join(_commands("setup-tests"))
    assert "bash .ci/setup" in setup_tests and "apt-get install" in setup_tests
    assert '-e ".[all]" "mesa==3.3.*"' in setup_tests
    assert '-e ".[all]" "mesa==3.5.*"' in setup_tests and "versions/3.12*" in setup_tests
    test = "\n".join(_commands("test"))
    assert "for venv in .venv .venv312" in test
    assert '-eq 5' in test and "collected no test" in test
    assert "set -e" not in test  # both stacks run even when the first fails


def test_extras():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert any(req.startswith("jupyterlab") for req in extras["notebooks"])
    listed = re.search(r"\[(.*)\]", extras["all"][0]).group(1).split(",")
    assert set(listed) == set(extras) - {"all"}  # `all` is every extra

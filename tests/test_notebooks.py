"""The example notebooks: stored without outputs, import only the package, run top to bottom."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SLOW: set[str] = set()  # prefixes of notebooks over ~20 s (all run in 4-8 s today)
ALLOWED_IMPORTS = {"mesa_econ", "mesa", "matplotlib", "numpy", "pandas", "torch"}


def _params(paths):
    return [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.name[:2] in SLOW else [])
            for p in paths]


def test_the_four_notebooks_are_there():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01_", "02_", "03_", "04_"]


@pytest.mark.parametrize("path", _params(NOTEBOOKS))
def test_notebook_is_stored_without_outputs_and_imports_only_the_package(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, "outputs not stripped"
        for module in re.findall(r"^\s*(?:from|import)\s+([\w.]+)", cell.source, re.M):
            assert module.split(".")[0] in ALLOWED_IMPORTS, module
        assert "sys.path" not in cell.source


@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", _params(NOTEBOOKS))
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=170,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "every notebook draws at least one figure"

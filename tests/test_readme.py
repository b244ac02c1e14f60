"""The README's code that users copy: the batch_run snippet runs as a plain script."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_batch_run_snippet_runs_as_a_script(tmp_path):
    """Mesa's batch_run starts workers with spawn, which re-import the script: without the
    ``__main__`` guard the script runs again in each worker and hangs."""
    (snippet,) = [block for block in _python_blocks() if "mesa.batch_run(" in block]
    assert 'if __name__ == "__main__":' in snippet
    assert "number_processes=2" in snippet
    script = tmp_path / "batch.py"
    script.write_text(snippet + "    print(len(rows), sorted({row['RunId'] for row in rows}))\n")
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-4:] == ["[0,", "1,", "2,", "3]"]  # 2 kappas x 2 seeds

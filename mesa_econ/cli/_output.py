"""The one writer of the ``mesa-econ`` commands' results: the ``--out`` check, JSON, CSV,
Parquet, text and figures.

Every command calls :func:`check_writable` on its ``--out`` before any work starts, so a
directory that cannot be written fails in a second with one ``error:`` line instead of
after minutes of training. matplotlib and pandas are imported only when a file is written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "check_writable",
    "pyplot",
    "save_figure",
    "write_json",
    "write_table",
    "write_text",
    "wrote",
]


def check_writable(out: str | Path, option: str = "--out") -> Path:
    """Create ``out`` and check a file can be written there, before any work starts.

    Args:
        out: the output directory (created with its parents).
        option: the option's name for the message.

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: ``{option} '...' is invalid: not a writable directory (...)``.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_check"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{option} {str(out)!r} is invalid: not a writable directory "
                         f"({exc})") from None
    return out


def write_json(path: Path, data: Any, *, default: Any = str, allow_nan: bool = True) -> Path:
    """Write ``data`` as indented JSON (objects JSON cannot hold through ``default``)."""
    path.write_text(json.dumps(data, indent=2, default=default, allow_nan=allow_nan))
    return path


def write_text(path: Path, text: str) -> Path:
    """Write a text file (markdown reports)."""
    path.write_text(text)
    return path


def write_table(frame: Any, path: Path, *, index: bool = False) -> Path:
    """Write a pandas frame as CSV or Parquet, by the path's suffix."""
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=index)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=index)
    else:
        raise ValueError(f"path={str(path)!r} is invalid: expected a .csv or .parquet file")
    return path


def pyplot() -> Any:
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, *, dpi: int = 110) -> Path:
    """Save a figure as PNG and release it (pyplot's figures stay open until closed)."""
    fig.savefig(path, dpi=dpi)
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:  # a bare matplotlib.figure.Figure was never registered there
        plt.close(fig)
    return path


def wrote(out: str | Path, names: Iterable[str]) -> str:
    """The line a command prints last: ``wrote OUT/a.csv, b.png, ...``."""
    return f"wrote {out}/" + ", ".join(names)

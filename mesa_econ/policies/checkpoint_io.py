"""Reading a checkpoint's two files without trusting them (see :mod:`.checkpoint`).

The JSON is read only when it is at most :data:`MAX_JSON_BYTES`; deep nesting and
``MemoryError`` become ``ValueError`` naming the file. The safetensors file is checked
from its size and its header alone (at most :data:`MAX_HEADER_BYTES`) against the tensors
the JSON declares, and its data read only when every byte is accounted for: a file larger
than the declared tensors need is refused before it is read.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import torch

__all__ = ["DTYPE_SIZES", "MAX_HEADER_BYTES", "MAX_JSON_BYTES", "check_tensor_file",
           "check_tensor_specs", "out_of_memory", "read_json", "read_tensors"]

MAX_JSON_BYTES = 4 * 2**20
"""Largest ``policy.json`` read (a real one is a few kB)."""
MAX_HEADER_BYTES = 2**20
"""Largest safetensors header read (a real one is ~100 bytes per tensor)."""
DTYPE_SIZES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8,
               "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1}
"""Bytes per element of the dtypes a checkpoint may declare (torch names)."""
_SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16",
                       "BF16": "bfloat16", "I64": "int64", "I32": "int32", "I16": "int16",
                       "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def out_of_memory(path: Path, what: str) -> ValueError:
    """The error that replaces a ``MemoryError`` raised while loading ``path``."""
    return ValueError(f"checkpoint {path} could not be loaded: out of memory (MemoryError) "
                      f"while {what}; the file declares more than this machine can hold, or "
                      "it is not a checkpoint")


def _parse(data: bytes, path: Path, what: str) -> Any:
    """``json.loads`` with every failure a ValueError saying ``what`` (which names path)."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} is not valid JSON (corrupted?): {exc}") from None
    except RecursionError:
        raise ValueError(f"{what} is JSON nested too deeply to be a checkpoint "
                         "(RecursionError while parsing it)") from None
    except MemoryError:
        raise out_of_memory(path, "parsing its JSON") from None


def read_json(path: Path) -> Any:
    """The JSON value in ``path`` (a file of at most :data:`MAX_JSON_BYTES`).

    Raises:
        ValueError: too large, not UTF-8 JSON, nested too deeply, or out of memory.
    """
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ValueError(f"checkpoint metadata {path} is {size} bytes: expected at most "
                         f"{MAX_JSON_BYTES} (a checkpoint's JSON is a few kB; not a checkpoint?)")
    return _parse(path.read_bytes(), path, f"checkpoint metadata {path}")


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_tensor_specs(declared: Any, json_path: Path) -> int:
    """Check the JSON's ``tensors`` (name → shape and dtype); return the bytes they need."""
    if not isinstance(declared, dict):
        raise ValueError(f"checkpoint {json_path} 'tensors' must map tensor names to shape "
                         "and dtype")
    need = 0
    for name, spec in sorted(declared.items()):
        if not isinstance(spec, dict) or not isinstance(spec.get("shape"), list) \
                or not all(_is_size(n) for n in spec["shape"]) \
                or spec.get("dtype") not in DTYPE_SIZES:
            raise ValueError(f"checkpoint {json_path} tensor {name!r}: {spec!r} is invalid: "
                             "expected {'shape': [non-negative integers], 'dtype': one of "
                             f"{sorted(DTYPE_SIZES)}}}")
        need += math.prod(spec["shape"]) * DTYPE_SIZES[spec["dtype"]]
    return need


def _header_errors(header: Any, declared: dict[str, Any], need: int) -> str | None:
    """What is wrong with a safetensors header against the declared tensors, or None."""
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    names = set(header) - {"__metadata__"}
    if names != set(declared):
        return (f"its header lists the tensors {sorted(names)} but the JSON lists "
                f"{sorted(declared)}")
    spans = []
    for name in sorted(names):
        entry, spec = header[name], declared[name]
        if not isinstance(entry, dict):
            return f"its header entry {name!r} is not an object"
        dtype = _SAFETENSORS_DTYPES.get(entry.get("dtype"))
        if dtype != spec["dtype"] or entry.get("shape") != spec["shape"]:
            return (f"its header declares tensor {name!r} as shape {entry.get('shape')!r}, "
                    f"dtype {entry.get('dtype')!r}: the JSON says {spec!r}")
        span = entry.get("data_offsets")
        size = math.prod(spec["shape"]) * DTYPE_SIZES[dtype]
        if not (isinstance(span, list) and len(span) == 2 and all(_is_size(v) for v in span)
                and span[1] - span[0] == size):
            return (f"its header gives tensor {name!r} the byte range {span!r}: expected "
                    f"{size} bytes")
        spans.append(span)
    end = 0
    for start, stop in sorted(spans):
        if start != end:
            return "its header's byte ranges overlap or leave gaps"
        end = stop
    return None if end == need else f"its header's byte ranges end at {end}, not {need}"


def check_tensor_file(tensor_path: Path, declared: dict[str, Any], need: int) -> None:
    """Check the tensor file's size and header against the declared tensors, reading at
    most ``8 + MAX_HEADER_BYTES`` bytes of it (its data is not read).

    Raises:
        ValueError: missing file, a size other than header + ``need`` bytes (a larger file
            is refused before anything is read), a bad header, or an entry that differs
            from the JSON.
    """
    if not tensor_path.is_file():
        raise ValueError(f"checkpoint tensors {tensor_path} not found")
    size = tensor_path.stat().st_size
    where = f"checkpoint tensors {tensor_path}"
    if size > 8 + MAX_HEADER_BYTES + need:
        raise ValueError(f"{where} is {size} bytes: larger than the {need} bytes of tensors "
                         f"its JSON declares plus a header of at most {MAX_HEADER_BYTES} "
                         "bytes; refused unread (not this checkpoint's tensors?)")
    with tensor_path.open("rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{where} is {size} bytes: too short for a safetensors file "
                             "(truncated or corrupted?)")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"{where} is {size} bytes but claims a header of {header_len} "
                             "bytes: not a valid safetensors file (truncated or corrupted?)")
        header = _parse(file.read(header_len), tensor_path, f"{where}: its header")
    problem = _header_errors(header, declared, need)
    if problem is not None:
        raise ValueError(f"{where}: {problem}")
    if 8 + header_len + need != size:
        raise ValueError(f"{where} is {size} bytes: its header ({header_len} bytes) and the "
                         f"tensors the JSON declares ({need} bytes) make {8 + header_len + need}"
                         " (truncated, or data appended?)")


def read_tensors(tensor_path: Path, declared: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a file already checked by :func:`check_tensor_file`.

    Raises:
        ValueError: bytes safetensors cannot read, a tensor that differs from the JSON,
            or non-finite values.
    """
    from safetensors.torch import load

    try:
        tensors = load(tensor_path.read_bytes())
    except MemoryError:
        raise out_of_memory(tensor_path, "reading its tensors") from None
    except Exception as exc:  # safetensors raises its own error types on bad bytes
        raise ValueError(f"checkpoint tensors {tensor_path} are not a valid safetensors "
                         f"file (truncated or corrupted?): {exc}") from None
    for name, t in sorted(tensors.items()):
        spec = declared.get(name)
        if not isinstance(spec, dict) or list(t.shape) != spec.get("shape") \
                or str(t.dtype).removeprefix("torch.") != spec.get("dtype"):
            raise ValueError(f"checkpoint tensor {name!r} has shape {list(t.shape)} and dtype "
                             f"{t.dtype}: the JSON says {spec!r}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"checkpoint tensor {name!r} holds NaN or inf (corrupted?)")
    return tensors

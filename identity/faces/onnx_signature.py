"""What an ONNX file takes and gives — its graph's inputs and outputs — read without loading its weights.

A pack's models are told apart by their graphs, as insightface's own model router does, not by their file names.
Reading a 250 MB recognizer to learn that costs a second; here the protobuf is walked field by field and the
weights (initializers) are skipped with a seek, so a folder of packs is sized up in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import onnx
from google.protobuf.message import DecodeError

# Field numbers of onnx.proto (ModelProto.graph; GraphProto.initializer/input/output; TensorProto.name).
_MODEL_GRAPH, _GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT, _TENSOR_NAME = 7, 5, 11, 12, 8
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


@dataclass(frozen=True)
class Signature:
    """The shapes of the data inputs (weights listed as inputs by old exporters left out) and of the outputs;
    a symbolic size is None."""

    inputs: tuple[tuple[int | None, ...], ...]
    outputs: tuple[tuple[int | None, ...], ...]


def signature(path: Path) -> Signature | None:
    """The file's signature, or None when it is not an ONNX model (empty, truncated, something else)."""
    try:
        with Path(path).open("rb") as handle:
            end = handle.seek(0, 2)
            handle.seek(0)
            graph = next(
                ((start, length) for number, start, length in _fields(handle, end) if number == _MODEL_GRAPH), None
            )
            if graph is None:
                return None
            inputs, outputs, weights = [], [], set()
            for number, start, length in _fields(handle, graph[0] + graph[1]):
                if number == _GRAPH_INPUT:
                    inputs.append(onnx.ValueInfoProto.FromString(handle.read(length)))
                elif number == _GRAPH_OUTPUT:
                    outputs.append(onnx.ValueInfoProto.FromString(handle.read(length)))
                elif number == _GRAPH_INITIALIZER:
                    weights.add(_tensor_name(handle, start + length))
    except (OSError, ValueError, DecodeError):
        return None
    data = [_shape(v) for v in inputs if v.name not in weights]
    return Signature(tuple(data), tuple(_shape(v) for v in outputs)) if data and outputs else None


def _tensor_name(handle: BinaryIO, end: int) -> str:
    for number, _, length in _fields(handle, end):
        if number == _TENSOR_NAME:
            return handle.read(length).decode("utf-8", "replace")
    return ""


def _shape(value: onnx.ValueInfoProto) -> tuple[int | None, ...]:
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim)


def _fields(handle: BinaryIO, end: int):
    """(field number, start, length) of each length-delimited field up to `end`; the others are stepped over.
    The caller may read from `start`; the walk resumes after the field whatever was read."""
    while handle.tell() < end:
        key = _varint(handle)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            _varint(handle)
        elif wire in (_FIXED64, _FIXED32):
            handle.seek(8 if wire == _FIXED64 else 4, 1)
        elif wire == _BYTES:
            length = _varint(handle)
            start = handle.tell()
            if start + length > end:
                raise ValueError("truncated field")
            yield number, start, length
            handle.seek(start + length)
        else:
            raise ValueError(f"wire type {wire} is not protobuf")
        if handle.tell() > end:
            raise ValueError("truncated field")


def _varint(handle: BinaryIO) -> int:
    value, shift = 0, 0
    while True:
        byte = handle.read(1)
        if not byte:
            raise ValueError("truncated varint")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")

"""Just enough of the protobuf wire format to touch ONNX files without the ``onnx`` package.

Two uses:

* :func:`constant_initializers`: the pinned SFace export lists its ~200 weight
  tensors also as graph *inputs*, so onnxruntime must treat them as overridable
  and may skip constant folding (embedding measured about 20% slower). We
  drop those entries from the graph's input list in memory; the weights and
  the file on disk are unchanged (and still checksum-verified).
* :func:`tiny_model`: tests build a small real ONNX model (for the optional PAD
  hook) without adding a dependency.

Field numbers are from onnx.proto (ModelProto.graph = 7, GraphProto.input = 11,
GraphProto.initializer = 5, TensorProto.name = 8, ValueInfoProto.name = 1).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(field number, wire type, payload, raw bytes of the whole field)."""
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            _, pos = _read_varint(data, pos)
            payload = b""
        elif wire == _I64:
            payload, pos = data[pos : pos + 8], pos + 8
        elif wire == _LEN:
            length, pos = _read_varint(data, pos)
            payload, pos = data[pos : pos + length], pos + length
        elif wire == _I32:
            payload, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated protobuf")
        yield number, wire, payload, data[start:pos]


def _name(message: bytes, field: int) -> str | None:
    for number, wire, payload, _ in _fields(message):
        if number == field and wire == _LEN:
            return payload.decode("utf-8", "replace")
    return None


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | _VARINT) + _varint(value)


def constant_initializers(model: bytes) -> bytes:
    """The model with initializers removed from the graph's input list."""
    out = bytearray()
    for number, wire, payload, raw in _fields(model):
        if number == 7 and wire == _LEN:
            out += _len_field(7, _strip_graph_inputs(payload))
        else:
            out += raw
    return bytes(out)


def _strip_graph_inputs(graph: bytes) -> bytes:
    fields = list(_fields(graph))
    initializers = {
        _name(payload, 8) for number, wire, payload, _ in fields if number == 5 and wire == _LEN
    }
    out = bytearray()
    for number, wire, payload, raw in fields:
        if number == 11 and wire == _LEN and _name(payload, 1) in initializers:
            continue
        out += raw
    return bytes(out)


# --- building tiny models (tests) -----------------------------------------------------

FLOAT = 1


def _value_info(name: str, shape: Sequence[int | str]) -> bytes:
    dims = b"".join(
        _len_field(1, _int_field(1, d) if isinstance(d, int) else _len_field(2, d.encode()))
        for d in shape
    )
    tensor_type = _int_field(1, FLOAT) + _len_field(2, dims)
    return _len_field(1, name.encode()) + _len_field(2, _len_field(1, tensor_type))


def _node(op_type: str, inputs: Sequence[str], outputs: Sequence[str]) -> bytes:
    body = b"".join(_len_field(1, i.encode()) for i in inputs)
    body += b"".join(_len_field(2, o.encode()) for o in outputs)
    return body + _len_field(4, op_type.encode())


def tiny_model(
    input_name: str,
    input_shape: Sequence[int | str],
    output_name: str,
    output_shape: Sequence[int | str],
    nodes: Sequence[tuple[str, Sequence[str], Sequence[str]]],
    *,
    opset: int = 13,
) -> bytes:
    """Serialise a small float ONNX model: a chain of attribute-free nodes."""
    graph = b"".join(_len_field(1, _node(*node)) for node in nodes)
    graph += _len_field(2, b"tiny")
    graph += _len_field(11, _value_info(input_name, input_shape))
    graph += _len_field(12, _value_info(output_name, output_shape))
    opset_import = _len_field(1, b"") + _int_field(2, opset)
    return (
        _int_field(1, 8)  # ir_version
        + _len_field(2, b"healthcode-tests")
        + _len_field(7, graph)
        + _len_field(8, opset_import)
    )

"""Feast ``Value`` blobs decoded from their wire format exactly as protobuf decodes them: one at
a time (``value_of``, ``values_of``) and many rows in one pass (``rows_of``), unusual blobs left
to protobuf, and what protobuf refuses refused."""

from __future__ import annotations

import math
import random

import pytest
from feast.protos.feast.types.Value_pb2 import (
    DoubleList,
    Int64List,
    Null,
    RepeatedValue,
    StringList,
    Value,
)
from google.protobuf.message import DecodeError

from orchestration.serving.wire import SMALL, python_value, rows_of, value_of, values_of

VALUES = [
    Value(),
    Value(null_val=Null.NULL),
    *(Value(double_val=x) for x in (0.0, -0.0, 1.5, -3.25e-300, 1e308, math.inf, -math.inf)),
    Value(double_val=math.nan),
    *(Value(int64_val=n) for n in (0, 1, 127, 128, 300, -1, -129, 2**62, 2**63 - 1, -(2**63))),
    *(Value(string_val=t) for t in ("", "a", "monthly", "é ü 中", "x" * 127, "y" * 128, "z" * 999)),
    Value(int32_val=-7),
    Value(float_val=0.1),
    Value(bool_val=True),
    Value(bool_val=False),
    Value(bytes_val=b"\x00\xff"),
    Value(unix_timestamp_val=1_700_000_000),
    Value(string_list_val=StringList(val=["R01", "R02"])),
    Value(double_list_val=DoubleList(val=[0.25, -1.0])),
    Value(int64_list_val=Int64List(val=[1, -2])),
]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("value", VALUES, ids=lambda v: v.WhichOneof("val") or "empty")
def test_value_of_decodes_every_kind_as_protobuf_does(value: Value) -> None:
    blob = value.SerializeToString()
    assert _same(value_of(blob), python_value(Value.FromString(blob)))


@pytest.mark.parametrize(
    "blob",
    [
        Value(int64_val=5).SerializeToString() + Value(double_val=2.0).SerializeToString(),
        Value(double_val=1.0).SerializeToString() + Value(double_val=2.0).SerializeToString(),
        Value(int64_val=5).SerializeToString() + Value(int64_val=9).SerializeToString(),
        Value(string_val="a").SerializeToString() + Value(int64_val=9).SerializeToString(),
        b"\x20" + b"\xff" * 9 + b"\x7f",  # an over-long int64 varint: protobuf keeps 64 bits
    ],
    ids=["int-then-double", "double-twice", "int-twice", "string-then-int", "overlong-varint"],
)
def test_value_of_leaves_unusual_blobs_to_protobuf(blob: bytes) -> None:
    assert _same(value_of(blob), python_value(Value.FromString(blob)))


def test_value_of_refuses_what_protobuf_refuses() -> None:
    bad_utf8 = b"\x12\x02\xc3\x28"
    with pytest.raises(DecodeError):
        Value.FromString(bad_utf8)
    with pytest.raises(DecodeError):
        value_of(bad_utf8)


def test_values_of_decodes_a_row_as_protobuf_does() -> None:
    for values in (VALUES, VALUES[::-1], [], [Value(string_val="w" * 200), Value(int64_val=3)]):
        blob = RepeatedValue(val=values).SerializeToString()
        decoded = values_of(blob)
        expected = [python_value(v) for v in RepeatedValue.FromString(blob).val]
        assert len(decoded) == len(expected)
        assert all(_same(a, b) for a, b in zip(decoded, expected, strict=True))


def test_values_of_refuses_a_truncated_row() -> None:
    blob = RepeatedValue(val=[Value(double_val=1.0), Value(double_val=2.0)]).SerializeToString()
    with pytest.raises(DecodeError):
        values_of(blob[:-3])


def _protobuf_rows(blobs: list[bytes]) -> list[list[object]]:
    return [[python_value(v) for v in RepeatedValue.FromString(b).val] for b in blobs]


def _same_rows(got: list, expected: list) -> bool:
    return len(got) == len(expected) and all(
        len(g) == len(e) and all(_same(a, b) for a, b in zip(g, e, strict=True))
        for g, e in zip(got, expected, strict=True)
    )


def _blob(values: list[Value]) -> bytes:
    return RepeatedValue(val=values).SerializeToString()


@pytest.mark.parametrize("seed", range(5))
def test_rows_of_decodes_rows_as_protobuf_does(seed: int) -> None:
    # Rows of every kind, of different lengths, nulls among them; columns of one kind, of one
    # kind with nulls, and mixed.
    rng = random.Random(seed)
    doubles = [Value(double_val=rng.uniform(-1e6, 1e6)) for _ in range(40)] + [Value()]
    ints = [Value(int64_val=rng.randint(-(2**63), 2**63 - 1)) for _ in range(40)] + [Value()]
    texts = [Value(string_val=rng.choice(["", "a", "monthly", "é ü 中"])) for _ in range(9)]
    blobs = []
    for _ in range(rng.randint(SMALL, 60)):
        typed = [rng.choice(doubles), rng.choice(ints), rng.choice([*texts, Value()])]
        mixed = [rng.choice(VALUES) for _ in range(rng.randint(0, 6))]
        blobs.append(_blob(typed + mixed))
    assert _same_rows(rows_of(blobs), _protobuf_rows(blobs))


def test_rows_of_reads_rows_framed_otherwise_by_protobuf() -> None:
    long_text = _blob([Value(string_val="w" * 200), Value(int64_val=3)])  # a 2-byte length
    blobs = [_blob(VALUES), b"", long_text, _blob(VALUES[::-1]), _blob([])] * 2
    assert _same_rows(rows_of(blobs), _protobuf_rows(blobs))
    assert rows_of([]) == []


def test_rows_of_refuses_what_protobuf_refuses() -> None:
    good = _blob([Value(double_val=1.0), Value(double_val=2.0)])
    bad_utf8 = b"\x0a\x04\x12\x02\xc3\x28"
    for bad in (good[:-3], bad_utf8):
        with pytest.raises(DecodeError):
            RepeatedValue.FromString(bad)
        with pytest.raises(DecodeError):
            rows_of([good] * SMALL + [bad])

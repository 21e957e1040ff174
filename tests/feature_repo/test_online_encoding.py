"""The Redis writer's encoders against Feast's own conversion, byte for byte (no Redis needed):
values (doubles with NaN and null, int64 extremes, unicode strings, lists), entity keys and
timestamps, plus the protobuf varint against its definition."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from feast.infra.online_stores.helpers import _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.utils import _columns_to_proto_values
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

from feature_repo.online import encode_values, redis_keys, timestamp_protos, varints

# With a null, Feast reads an int column as float (exact up to 2**53); without, as int64.
INT64S = [0, None, -1, 127, 128, 300, 2**53, -(2**53)]
CASES = [
    (pa.array([2**62, -(2**63), 2**63 - 1, 0], pa.int64()), ValueType.INT64),
    (pa.array([0.0, None, float("nan"), 1.5, -2e300, 5e-324, float("inf")]), ValueType.DOUBLE),
    (pa.array(INT64S, pa.int64()), ValueType.INT64),
    (pa.array(["", None, "é", "C0000001", "x" * 300, "日本"]), ValueType.STRING),
    (pa.array([[], None, ["a", "bé"], ["x" * 200]], pa.list_(pa.string())), ValueType.STRING_LIST),
    (pa.array([[], None, [1.0, -2.5], [np.nan]], pa.list_(pa.float64())), ValueType.DOUBLE_LIST),
]


@pytest.mark.parametrize(
    ("values", "kind"), CASES, ids=[f"{k}-{i}" for i, (_, k) in enumerate(CASES)]
)
def test_values_encode_as_feast_serializes_them(values: pa.Array, kind: ValueType) -> None:
    batch = pa.record_batch([values], names=["c"])
    expected = [v.SerializeToString() for v in _columns_to_proto_values(batch, [("c", kind)])["c"]]
    assert encode_values(values, kind).to_pylist() == expected


def test_entity_keys_are_feasts_redis_keys() -> None:
    ids = ["C0000001", "é", "", "x" * 500]
    keys = [EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=i)]) for i in ids]
    expected = [_redis_key("scorehouse", key) for key in keys]
    assert redis_keys(pa.array(ids), "customer_id", "scorehouse").to_pylist() == expected
    with pytest.raises(ValueError, match="null entity ids"):
        redis_keys(pa.array(["a", None]), "customer_id", "scorehouse")


def test_timestamps_and_varints_follow_protobuf() -> None:
    moments = [datetime(1970, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, 0, 0, 0, 123456, tzinfo=UTC)]
    seconds = np.array([0, 1735689600, 5, int(moments[1].timestamp())])
    nanos = np.array([0, 0, 999_999_999, 123_456_000])
    pairs = zip(seconds, nanos, strict=True)
    expected = [Timestamp(seconds=int(s), nanos=int(n)).SerializeToString() for s, n in pairs]
    assert timestamp_protos(seconds, nanos).to_pylist() == expected
    numbers = np.array([0, 1, 127, 128, 16383, 16384, 2**63, 2**64 - 1], dtype=np.uint64)

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            low, n = n & 0x7F, n >> 7
            out.append(low | (0x80 if n else 0))
            if not n:
                return bytes(out)

    assert varints(numbers).to_pylist() == [varint(int(n)) for n in numbers]

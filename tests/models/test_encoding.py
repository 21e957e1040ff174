"""The feature encoding: ``encode_rows`` (Python values, the service's small requests) gives
the matrix ``matrix`` gives for the same rows as a frame (batch scoring), bit for bit, and
refuses wrongly typed values naming the feature and the row."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from models.encoding import FeatureEncoding, FeatureListError
from models.scoring.batch import feature_frame
from models.usecase import load_use_cases

ENCODING = FeatureEncoding(
    feature_service="test_v1",
    features={
        "count": pl.Int64(),
        "amount": pl.Float64(),
        "plan": pl.String(),
        "active": pl.Boolean(),
        "opened": pl.Date(),
    },
    categories={"plan": ("basic", "pro", "team")},
    label="label",
    join_key="id",
)
STAMP = datetime(2026, 1, 1, tzinfo=UTC)

# Values where a careless conversion differs: ints that float32 (or float64) must round,
# int64's ends, float64 values float32 cannot hold, NaN beside null, unknown categories.
INTS = [0, -1, 7, 2**24 + 1, 2**53 + 1, -(2**63), 2**63 - 1, 16_777_217 * 3, None]
FLOATS = [0.0, -0.0, 1.1, 1e-45, 3.4e38, -2.5e-320, float("nan"), 123456789.123, 7, None]
PLANS = ["basic", "team", "platinum", "", None]
ACTIVE = [True, False, None]
OPENED = [date(1970, 1, 1), date(2026, 12, 2), date(1900, 3, 1), None]


def _frame_matrix(encoding: FeatureEncoding, rows: list[dict]) -> np.ndarray:
    ids = [f"E{i}" for i in range(len(rows))]
    return encoding.matrix(feature_frame(encoding, ids, rows, STAMP))


def _same_bits(left: np.ndarray, right: np.ndarray) -> bool:
    return left.shape == right.shape and left.tobytes() == right.tobytes()


def test_rows_encode_exactly_as_their_frame() -> None:
    rng = np.random.default_rng(3)
    rows = [
        {
            "count": INTS[rng.integers(len(INTS))],
            "amount": FLOATS[rng.integers(len(FLOATS))],
            "plan": PLANS[rng.integers(len(PLANS))],
            "active": ACTIVE[rng.integers(len(ACTIVE))],
            "opened": OPENED[rng.integers(len(OPENED))],
        }
        for _ in range(400)
    ]
    rows.append({})  # every feature absent: all missing
    encoded = ENCODING.encode_rows(rows)
    assert encoded.dtype == np.float32 and encoded.flags.c_contiguous
    assert _same_bits(encoded, _frame_matrix(ENCODING, rows))
    assert np.isnan(encoded[-1]).all()
    plan = ENCODING.names.index("plan")
    codes = {r.get("plan"): encoded[i, plan] for i, r in enumerate(rows)}
    assert codes["team"] == 2.0 and np.isnan(codes["platinum"]) and np.isnan(codes[None])


def test_a_use_cases_online_rows_encode_as_their_frame() -> None:
    churn = load_use_cases()["churn"].encoding
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(50):
        row: dict = {}
        for name, dtype in churn.features.items():
            if rng.random() < 0.1:
                row[name] = None
            elif name in churn.categories:
                row[name] = str(rng.choice([*churn.categories[name], "unseen"]))
            elif dtype.is_integer():
                row[name] = int(rng.integers(-(10**9), 10**9))
            else:
                row[name] = float(rng.normal() * 10.0 ** rng.integers(-3, 9))
        rows.append(row)
    assert _same_bits(churn.encode_rows(rows), _frame_matrix(churn, rows))


@pytest.mark.parametrize(
    ("feature", "value", "expected", "frame_refuses"),
    [
        ("count", 1.5, "expected Int64, got float", True),
        ("amount", "1.5", "expected a number, got str", True),
        ("plan", 2, "expected a string, got int", True),
        # Stricter than the frame, which reads a boolean as the number 1 or 0.
        ("count", True, "expected Int64, got bool", False),
        ("amount", False, "expected a number, got bool", False),
        ("active", 1, "expected Boolean, got int", False),
    ],
)
def test_a_wrongly_typed_value_is_refused_naming_feature_and_row(
    feature: str, value: object, expected: str, frame_refuses: bool
) -> None:
    rows = [{"count": 1}, {feature: value}]
    with pytest.raises(FeatureListError, match=rf"feature '{feature}'.*row 1: {expected}"):
        ENCODING.encode_rows(rows)
    if frame_refuses:
        with pytest.raises((TypeError, ValueError, pl.exceptions.PolarsError)):
            feature_frame(ENCODING, ["a", "b"], rows, STAMP)

"""Explaining many rows allocates little beyond the output array (rows go through in blocks)."""

from __future__ import annotations

import multiprocessing
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import xgboost as xgb

from models.explain import TreeShapExplainer

N_ROWS = 200_000
N_FEATURES = 10
BLOCK_ROWS = 10_000


def test_peak_memory_is_output_plus_one_block() -> None:
    # tracemalloc sees every thread of the process: measure in a fresh one, where no thread
    # left behind by another test allocates during the measurement.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply(_measure)


def _measure() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, N_FEATURES))
    booster = xgb.train(
        {"max_depth": 4, "nthread": 1}, xgb.DMatrix(X[:2000], X[:2000, 0] - X[:2000, 1]), 10
    )
    explainer = TreeShapExplainer(booster, block_rows=BLOCK_ROWS)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(N_FEATURES)])
    # a whole-input float32 copy would be N_ROWS * N_FEATURES * 4 = 8 MB; one block is 0.4 MB
    allowance = 4 * BLOCK_ROWS * N_FEATURES * 4
    for data in (X, frame, pa.Table.from_pandas(frame)):
        tracemalloc.start()
        try:
            values = explainer.shap_values(data)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert values.shape == (N_ROWS, N_FEATURES + 1)
        assert peak - values.nbytes < allowance, (type(data).__name__, peak - values.nbytes)

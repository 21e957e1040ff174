"""Benchmark LIME on 1,000 rows of a credit scoring run (the quality bar: under a minute).

A credit-shaped training frame (the built-in spec's 22 features and encoding, risk driven by
days past due, bureau score, utilisation and DTI) trains a model with the spec's design (monotone
constraints included); LIME (``models.evidence.lime``, the spec's settings: 1,000 perturbations
per row, quartile bins) explains 1,000 rows, and agreement with SHAP is computed. The baseline,
in the same process on the same rows, is the exact TreeSHAP of record
(``models.explain.TreeShapExplainer``): the ratio says what the second opinion costs.

Usage::

    python benchmarks/bench_lime.py [--rows 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, date, datetime

import numpy as np
import polars as pl

from models.evidence.lime import LimeExplainer, LimeSettings, agreement
from models.explain import TreeShapExplainer
from models.training.params import TrainingParams
from models.training.train import train
from models.usecase import load_use_cases


def credit_frame(rows: int, seed: int = 0) -> pl.DataFrame:
    """Training rows of the credit spec's schema with a learnable default label."""
    use_case = load_use_cases()["credit"]
    rng = np.random.default_rng(seed)
    spec = use_case.table_spec(use_case.tables.training_set)
    values: dict[str, object] = {}
    for name, dtype in use_case.encoding.features.items():
        vocabulary = use_case.encoding.categories.get(name)
        if vocabulary is not None:
            values[name] = rng.choice(list(vocabulary), rows)
        elif dtype.is_integer():
            values[name] = rng.poisson(2.0, rows)
        else:
            values[name] = rng.lognormal(0.0, 0.5, rows)
    values["current_dpd"] = rng.choice([0, 30, 60], rows, p=[0.93, 0.04, 0.03])
    values["bureau_score"] = rng.integers(560, 851, rows)
    values["revolving_utilization"] = rng.uniform(0, 1.2, rows)
    values["debt_to_income"] = rng.uniform(0.05, 0.7, rows)
    logit = (
        -3.0
        + 0.04 * values["current_dpd"]  # type: ignore[operator]
        - 0.012 * (values["bureau_score"] - 700)  # type: ignore[operator]
        + 1.5 * values["revolving_utilization"]  # type: ignore[operator]
        + 3.0 * values["debt_to_income"]  # type: ignore[operator]
    )
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    frame = pl.DataFrame(
        {
            "loan_id": [f"L{i:07d}" for i in range(rows)],
            "as_of_date": [date(2026, 1, 1)] * rows,
            "event_timestamp": [datetime(2026, 1, 1, tzinfo=UTC)] * rows,
            use_case.label.definition.column: label,
            **values,
        }
    )
    return frame.select([pl.col(c).cast(t) for c, t in spec.schema.items()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    use_case = load_use_cases()["credit"]
    assert use_case.explanations is not None
    frame = credit_frame(20_000)
    params = TrainingParams(nthread=1, num_boost_round=300, min_rows=1000)
    model = train(frame, use_case.design, params)
    encoding = use_case.encoding
    matrix = encoding.matrix(frame)
    rows, ids = matrix[: args.rows], frame["loan_id"].head(args.rows).to_list()
    settings = LimeSettings(
        num_samples=use_case.explanations.num_samples, seed=use_case.explanations.seed
    )
    explainer = LimeExplainer(
        model.booster.inplace_predict, matrix, encoding.names, encoding.categories, settings
    )
    shap = TreeShapExplainer(model.booster)
    shap.shap_values(rows[:10])  # compile the kernels outside the timing
    lime_times, shap_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        contributions = shap.shap_values(rows)
        shap_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        found = explainer.explain(rows, ids)
        lime_times.append(time.perf_counter() - start)
    summary = agreement(contributions[:, :-1], found.weights, use_case.explanations.top_k).summary()
    lime_s, shap_s = statistics.median(lime_times), statistics.median(shap_times)
    print(
        f"rows={args.rows} features={len(encoding.names)} "
        f"trees={model.booster.num_boosted_rounds()}"
    )
    print(f"LIME    median {lime_s:.2f} s ({1000 * lime_s / args.rows:.1f} ms/row) of {lime_times}")
    print(f"TreeSHAP median {shap_s:.4f} s of {shap_times}")
    print(f"ratio LIME / TreeSHAP: {lime_s / shap_s:.0f}x")
    print("agreement: " + ", ".join(f"{k}={v:.3f}" for k, v in summary.items()))
    print(
        "quality bar (1,000 rows under 60 s): "
        + ("met" if lime_s * 1000 / args.rows < 60 else "MISSED")
    )


if __name__ == "__main__":
    main()

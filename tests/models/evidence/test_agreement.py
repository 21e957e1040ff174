"""The agreement statistics against scipy, and LIME's reproducibility on a small model."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb
from scipy.stats import spearmanr

from models.evidence.lime import LimeExplainer, LimeSettings, agreement, row_seed, top_features


def test_spearman_and_sign_agreement_match_scipy_on_random_vectors() -> None:
    rng = np.random.default_rng(3)
    shap = rng.normal(size=(200, 9))
    lime = shap * rng.uniform(0.2, 2.0, size=shap.shape) + rng.normal(0, 0.3, size=shap.shape)
    lime[:20] = np.round(lime[:20], 0)  # ties: average ranks, as scipy
    top_k = 5
    found = agreement(shap, lime, top_k)
    top = top_features(shap, top_k)
    for i in range(len(shap)):
        s, w = np.abs(shap[i, top[i]]), np.abs(lime[i, top[i]])
        expected = spearmanr(s, w).statistic
        if np.isnan(expected):
            assert np.isnan(found.spearman[i])
        else:
            assert found.spearman[i] == pytest.approx(expected, abs=1e-12)
        assert found.sign[i] == pytest.approx(
            np.mean(np.sign(shap[i, top[i]]) == np.sign(lime[i, top[i]]))
        )
        assert found.top1[i] == float(np.argmax(np.abs(lime[i])) == np.argmax(np.abs(shap[i])))


def test_perfect_and_reversed_orders() -> None:
    shap = np.array([[4.0, -3.0, 2.0, 1.0]])
    assert agreement(shap, shap * 0.1, 4).spearman[0] == pytest.approx(1.0)
    reversed_ = np.array([[1.0, 2.0, -3.0, 4.0]])
    found = agreement(shap, reversed_, 4)
    assert found.spearman[0] == pytest.approx(-1.0)
    assert found.sign[0] == pytest.approx(0.5)  # features 0 and 3 agree in sign


@pytest.fixture(scope="module")
def model() -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 5)).astype(np.float32)
    x[:, 4] = rng.integers(0, 3, 3000)
    y = (2 * x[:, 0] - x[:, 1] + 0.3 * x[:, 4] + rng.normal(size=3000) > 0).astype(int)
    booster = xgb.train(
        {"max_depth": 3, "objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(x, label=y),
        60,
    )
    return booster, x


def test_lime_is_seeded_per_row_and_finds_the_strong_features(model) -> None:
    booster, x = model
    names = ["a", "b", "c", "d", "cat"]
    explainer = LimeExplainer(
        booster.inplace_predict, x, names, {"cat": ["p", "q", "r"]}, LimeSettings(seed=11)
    )
    rows, ids = x[:40], [f"E{i}" for i in range(40)]
    batch = explainer.explain(rows, ids)
    alone = explainer.explain(rows[7:8], ids[7:8])
    np.testing.assert_array_equal(alone.weights[0], batch.weights[7])
    assert batch.seeds[7] == row_seed(11, "E7")
    shap = booster.predict(xgb.DMatrix(rows), pred_contribs=True)[:, :-1]
    summary = agreement(shap, batch.weights, 3).summary()
    assert summary["mean_spearman"] > 0.3 and summary["sign_agreement"] > 0.8
    # The noise features c, d matter least to LIME as to SHAP.
    assert set(np.argsort(np.abs(batch.weights).mean(axis=0))[:2]) == {2, 3}
    with pytest.raises(ValueError, match="missing values"):
        explainer.explain(np.full((1, 5), np.nan, dtype=np.float32), ["E0"])

"""A scoring run's plots: PNG files for a run of rows and for a run of none, without warnings
(an empty run used to plot the mean of an empty slice)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from models.scoring.plots import write_run_plots

NAMES = ["mrr", "seats", "plan"]
PNG = b"\x89PNG\r\n\x1a\n"


def _plots(folder: Path, rows: int) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(rows, len(NAMES)))
    inputs[::3, 2] = np.nan  # a missing value is drawn grey
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return write_run_plots(
            folder,
            rng.uniform(size=rows),
            rng.normal(size=(rows, len(NAMES))),
            inputs,
            NAMES,
            [0.1, 0.5],
        )


def test_every_plot_is_a_png_file(tmp_path: Path) -> None:
    plots = _plots(tmp_path, 50)
    assert set(plots) == {"shap_importance", "shap_beeswarm", "score_distribution"}
    for name, png in plots.items():
        assert png.startswith(PNG)
        assert (tmp_path / f"{name}.png").read_bytes() == png


def test_a_run_without_rows_plots_empty_axes_without_warnings(tmp_path: Path) -> None:
    plots = _plots(tmp_path, 0)
    assert all(png.startswith(PNG) for png in plots.values())

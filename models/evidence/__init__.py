"""Regulatory evidence of a use case's scoring runs: LIME beside SHAP, fairness by group.

* ``lime``: seeded LIME explanations of a sample of a run and their agreement with the run's
  recorded TreeSHAP (SHAP stays the system of record: it is exact and additive);
* ``fairness``: adverse impact ratio, approval-rate and PD-calibration gaps per protected group;
* ``protected``: the protected attributes of scored entities, point in time, from silver;
* ``record``: both computed from a scoring run's recorded rows, as table rows;
* ``tables``, ``plots``: the monitoring tables and the plots of both.
"""

"""The model documentation pack: one document per registered model version.

In the spirit of SR 11-7 and the EU AI Act's Annex IV: purpose, data and versions, features and
constraints, performance by vintage with confidence intervals, calibration, stability,
explainability, fairness, limitations, the promotion decision and its evidence, and the
approvals recorded in MLflow. ``content`` reads what exists (MLflow and the Delta tables) and
says plainly what is not available yet; ``render`` writes Markdown and self-contained HTML;
``publish`` writes both files, logs them to the version's MLflow run and tags the version.
"""

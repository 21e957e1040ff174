"""Training domain, per use case: GX gates, xgboost training with MLflow, champion/challenger
promotion (``assets``), the Great Expectations checks (``checks``) and the simulator truth used
to evaluate models (``truth``)."""

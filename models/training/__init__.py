"""Training: parameters and splits (``params``, light: use-case specs import it) and the
xgboost training run (``train``)."""

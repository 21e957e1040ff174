"""Scoring: the policy (``policy``, light), batch scoring with exact SHAP and reason codes
(``batch``), reason codes (``reasons``), per-run plots (``plots``) and exact replay
(``replay``)."""

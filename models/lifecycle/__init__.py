"""The model lifecycle: the MLflow registry (``registry``), promotion policy and decisions
(``policy``, ``promotion``, ``tables``) and matured shadow evidence (``shadow``)."""

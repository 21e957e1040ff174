"""Monitoring domain, per use case: drift, matured-label performance, pipeline diagnosis and the
report (``assets``), and the retrain sensor (``sensor``)."""

"""Monitoring: drift, pipeline diagnosis, matured-label performance, the retrain policy and the
report (``docs/monitoring.md``)."""

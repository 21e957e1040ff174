"""Errors of the orchestration layer the command line reports as one line (no Dagster import)."""

from __future__ import annotations


class RunFailedError(RuntimeError):
    """A job run failed; the message names the run, the failed step and its error."""

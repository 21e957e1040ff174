"""Exceptions raised by the Delta offline store.

Each one subclasses the built-in exception a caller would naturally catch
(``FileNotFoundError`` for missing data, ``ValueError`` for bad input), so code that
does not know about this package still handles them sensibly.
"""

from __future__ import annotations


class DeltaTableNotFoundError(FileNotFoundError):
    """The Delta table behind a source does not exist (no ``_delta_log`` at the path)."""


class DeltaSnapshotUnavailableError(FileNotFoundError):
    """A Delta version cannot be read: its log entry or its data files are gone.

    Raised instead of silently reading other files, e.g. for a source pinned to a
    version whose data files were removed by ``VACUUM``.
    """


class DeltaSchemaError(ValueError):
    """A column a feature view needs is missing from its Delta table."""


class EntityFrameError(ValueError):
    """The entity frame passed to a historical retrieval is unusable."""

"""Errors raised by the lakehouse layer. Each message names the table and what failed."""

from __future__ import annotations


class LakehouseError(Exception):
    """Base class for lakehouse errors."""


class UnknownTableError(LakehouseError, KeyError):
    """A table name is not in the catalog."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class TableNotFoundError(LakehouseError):
    """The table is in the catalog but has never been written."""


class SchemaMismatchError(LakehouseError):
    """A frame does not match the catalog schema of the table it is written to."""


class RetentionError(LakehouseError):
    """A maintenance operation would break time travel to a version that must stay readable."""


class VersionNotAvailableError(LakehouseError):
    """A requested table version cannot be read (never existed, or its files were vacuumed)."""


class ConcurrentWriteError(LakehouseError):
    """A write lost a race to another writer and could not safely be retried, or its retries
    ran out. The message names the table, our operation and the winning commit."""


class StorageAccessError(LakehouseError):
    """The object store refused the request (credentials, permissions) or could not be reached."""

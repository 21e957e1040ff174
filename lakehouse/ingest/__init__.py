"""Ingest: landing files → ``bronze.*`` (validated, as landed) → ``silver.*`` (deduplicated).

* ``reader``: reads a feed's landing files and validates them against its contract.
* ``tables``: the bronze table of a feed; silver flows (how a silver table comes from bronze).
* ``delivery``: cross-feed business rules checked on a whole delivery before any write.
* ``saas``: the SaaS source system's silver tables.
* ``lending``: the lending source system's silver tables and business rules.
"""

"""Ingest: landing files → ``bronze.*`` (validated, as landed) → ``silver.*`` (deduplicated).

* ``reader``: reads a feed's landing files and validates them against its contract.
* ``tables``: the bronze table of a feed; silver flows (how a silver table comes from bronze).
* ``saas``: the SaaS source system's silver tables.
"""

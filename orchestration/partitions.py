"""Partitions shared by every domain: one per calendar day of landed data."""

from __future__ import annotations

from dagster import DailyPartitionsDefinition

from orchestration.settings import WORLD

daily_partitions = DailyPartitionsDefinition(start_date=WORLD.start_date.isoformat())

"""All Scorehouse Dagster definitions: every use case in effect, generated from its spec."""

from models.usecase import load_use_cases
from orchestration.usecase import build_definitions

defs = build_definitions(load_use_cases())

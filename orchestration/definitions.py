"""All Scorehouse Dagster definitions: every use case in effect, generated from its spec.

Loaded lazily (``@definitions``): each load of the code location — ``dagster dev`` reloading,
a run being launched — reads the specs afresh, so a new ``$SCOREHOUSE_HOME/usecases/*.yaml``
appears without restarting anything.
"""

from dagster import Definitions, definitions

from models.usecase import load_use_cases
from orchestration.usecase import build_definitions


@definitions
def defs() -> Definitions:
    return build_definitions(load_use_cases())

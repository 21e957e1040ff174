"""All Scorehouse Dagster definitions: every use case in effect, generated from its spec.

Loaded lazily (``@definitions``): each load of the code location — ``dagster dev`` reloading,
a run being launched — reads the specs afresh, so a new ``$SCOREHOUSE_HOME/usecases/*.yaml``
appears without restarting anything. The profile (``SCOREHOUSE_PROFILE``) is activated first:
every process that loads the code location (the UI, a run, a Celery worker) sees its settings.
"""

from dagster import Definitions, definitions

from models.usecase import load_use_cases
from orchestration.profiles import activate
from orchestration.usecase import build_definitions

activate()


@definitions
def defs() -> Definitions:
    return build_definitions(load_use_cases())

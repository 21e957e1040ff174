"""Use cases as declared specs: one YAML file per model family (``builtin/churn.yaml``).

    from models.usecase import load_use_cases
    use_cases = load_use_cases()          # built-in specs + $SCOREHOUSE_HOME/usecases/*.yaml
    churn = use_cases["churn"]
    lake = use_cases.lakehouse()          # Lakehouse over the catalog of every use case
    churn.tables.scoring.predictions      # 'ml.churn_predictions'

See ``docs/use-cases.md`` for the fields and ``docs/own-data.md`` for your own data.
"""

from models.scoring.policy import Reason
from models.usecase.load import SpecError, load_spec, parse_spec
from models.usecase.registry import UseCases, load_use_cases, project_lakehouse
from models.usecase.spec import Entity, UseCase

__all__ = [
    "Entity",
    "Reason",
    "SpecError",
    "UseCase",
    "UseCases",
    "load_spec",
    "load_use_cases",
    "parse_spec",
    "project_lakehouse",
]

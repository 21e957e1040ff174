"""The feature and label builders a use-case spec can name, by name.

A factory takes the use case's source tables, its entity key (features) or label definition
(labels) and the spec's ``options`` mapping, and raises ``BuilderError`` naming the option that
does not fit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lakehouse.features.events import BuilderError, EventWindows, Inactivity
from lakehouse.features.labels import LabelBuilder, LabelDefinition, SaasCancellations
from lakehouse.features.lending import CreditDefaults, CreditFeatures
from lakehouse.features.saas import SaasChurnFeatures
from lakehouse.features.snapshot import ColumnLabel, SnapshotColumns
from lakehouse.features.views import FeatureBuilder
from lakehouse.ingest.tables import SourceTables

FeatureFactory = Callable[[SourceTables, str, Mapping[str, Any]], FeatureBuilder]
LabelFactory = Callable[[SourceTables, LabelDefinition, Mapping[str, Any]], LabelBuilder]


def _no_options(name: str, options: Mapping[str, Any]) -> None:
    if options:
        raise BuilderError(f"builder {name!r} takes no options, got {sorted(options)}")


def _saas_churn(source: SourceTables, join_key: str, options: Mapping[str, Any]) -> FeatureBuilder:
    _no_options("saas_churn", options)
    if source.name != "saas" or join_key != "customer_id":
        raise BuilderError("builder 'saas_churn' reads the saas source by customer_id")
    return SaasChurnFeatures()


def _saas_cancellations(
    source: SourceTables, definition: LabelDefinition, options: Mapping[str, Any]
) -> LabelBuilder:
    _no_options("saas_cancellations", options)
    if source.name != "saas" or definition.join_key != "customer_id":
        raise BuilderError("builder 'saas_cancellations' reads the saas source by customer_id")
    return SaasCancellations()


def _lending_credit(
    source: SourceTables, join_key: str, options: Mapping[str, Any]
) -> FeatureBuilder:
    _no_options("lending_credit", options)
    if source.name != "lending" or join_key != "loan_id":
        raise BuilderError("builder 'lending_credit' reads the lending source by loan_id")
    return CreditFeatures()


def _credit_default(
    source: SourceTables, definition: LabelDefinition, options: Mapping[str, Any]
) -> LabelBuilder:
    _no_options("credit_default", options)
    if source.name != "lending" or definition.join_key != "loan_id":
        raise BuilderError("builder 'credit_default' reads the lending source by loan_id")
    return CreditDefaults()


FEATURE_BUILDERS: dict[str, FeatureFactory] = {
    "saas_churn": _saas_churn,
    "lending_credit": _lending_credit,
    "events": EventWindows.from_options,
    "snapshot": SnapshotColumns.from_options,
}
LABEL_BUILDERS: dict[str, LabelFactory] = {
    "saas_cancellations": _saas_cancellations,
    "credit_default": _credit_default,
    "inactivity": Inactivity.from_options,
    "column": ColumnLabel.from_options,
}

__all__ = ["FEATURE_BUILDERS", "LABEL_BUILDERS", "BuilderError"]

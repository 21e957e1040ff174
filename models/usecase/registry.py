"""Which use cases exist, and the one catalog of every table they and their sources write.

Specs are found in ``models/usecase/builtin/*.yaml`` (shipped) and ``$SCOREHOUSE_HOME/usecases/
*.yaml`` (yours, e.g. made by ``scorehouse init``). ``SCOREHOUSE_USE_CASES`` (comma-separated
names) keeps only those. Two use cases may share a source system (its tables are written once);
anything else two specs both claim — a table, a Feast entity with another join key, a feature
service — is refused with an error naming both spec files.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from lakehouse import config
from lakehouse.catalog import Catalog, TableSpec
from lakehouse.storage import Lakehouse
from models.usecase.load import SpecError, load_spec
from models.usecase.spec import UseCase

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
USE_CASES_ENV = "SCOREHOUSE_USE_CASES"


def home_dir() -> Path:
    """Where your own specs live: ``$SCOREHOUSE_HOME/usecases``."""
    return config.scorehouse_home(create=False) / "usecases"


def spec_files() -> list[Path]:
    """Every spec file found (built-in first), before the ``SCOREHOUSE_USE_CASES`` filter."""
    found = sorted(BUILTIN_DIR.glob("*.yaml"))
    own = home_dir()
    if own.is_dir():
        found += sorted(own.glob("*.yaml"))
    return found


class UseCases(Mapping[str, UseCase]):
    """The loaded use cases by name, with the catalog of all their tables."""

    def __init__(self, use_cases: list[UseCase]) -> None:
        self._by_name: dict[str, UseCase] = {}
        for use_case in use_cases:
            other = self._by_name.get(use_case.name)
            if other is not None:
                raise SpecError(
                    use_case.path or "?",
                    "name",
                    f"{use_case.name!r} is also defined by {other.path}",
                )
            self._by_name[use_case.name] = use_case
        self.catalog = _catalog(list(self._by_name.values()))
        _check_feast_names(list(self._by_name.values()))

    def __getitem__(self, name: str) -> UseCase:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise KeyError(f"unknown use case {name!r} (known: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def lakehouse(self, uri: str | Path | None = None) -> Lakehouse:
        """The lakehouse (``SCOREHOUSE_LAKEHOUSE_URI`` by default) over this catalog."""
        return Lakehouse(uri, catalog=self.catalog)


def _catalog(use_cases: list[UseCase]) -> Catalog:
    owners: dict[str, tuple[TableSpec, str]] = {}
    catalog = Catalog()
    for use_case in use_cases:
        source_tables = use_case.source.tables.tables()
        for spec, shared in [(s, True) for s in source_tables] + [
            (s, False) for s in use_case.table_specs()
        ]:
            owner = (
                f"source {use_case.source.name!r}"
                if shared
                else f"use case {use_case.name!r} ({use_case.path})"
            )
            previous = owners.get(spec.name)
            if previous is not None and (previous[0] != spec or previous[1] != owner):
                raise SpecError(
                    use_case.path or "?",
                    "tables",
                    f"table {spec.name} is claimed by {owner} and by {previous[1]} "
                    "(rule: a table belongs to one use case or one source)",
                )
            owners[spec.name] = (spec, owner)
            catalog.register(spec)
    return catalog


def _check_feast_names(use_cases: list[UseCase]) -> None:
    entities: dict[str, UseCase] = {}
    services: dict[str, UseCase] = {}
    for use_case in use_cases:
        entity = use_case.entity
        other = entities.setdefault(entity.name, use_case)
        if other.entity.join_key != entity.join_key:
            raise SpecError(
                use_case.path or "?",
                "entity.join_key",
                f"entity {entity.name!r} has join key {other.entity.join_key!r} in {other.path}",
            )
        other = services.setdefault(use_case.features.service, use_case)
        if other is not use_case:
            raise SpecError(
                use_case.path or "?",
                "features.service",
                f"feature service {use_case.features.service!r} is also defined by {other.path}",
            )


def load_use_cases() -> UseCases:
    """Every use case in effect now (see the module docstring), loaded once per set of files."""
    files = spec_files()
    wanted = [n.strip() for n in os.environ.get(USE_CASES_ENV, "").split(",") if n.strip()]
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in files)
    return _load(stamp, tuple(wanted))


@functools.lru_cache(maxsize=8)
def _load(stamp: tuple[tuple[str, int], ...], wanted: tuple[str, ...]) -> UseCases:
    use_cases = [load_spec(Path(path)) for path, _ in stamp]
    if wanted:
        missing = sorted(set(wanted) - {u.name for u in use_cases})
        if missing:
            raise SpecError(USE_CASES_ENV, "", f"no spec defines use cases {missing}")
        use_cases = [u for u in use_cases if u.name in wanted]
    return UseCases(use_cases)


def project_lakehouse(uri: str | Path | None = None) -> Lakehouse:
    """The lakehouse over the catalog of every use case in effect."""
    return load_use_cases().lakehouse(uri)

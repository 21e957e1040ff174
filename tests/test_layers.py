"""The layers hold: every import of the project's code, read from its source (function-level
imports included), against the dependency rules of docs/architecture.md.

    storage (lakehouse core) ← lakehouse.sources ← lakehouse.ingest ← lakehouse.features
                             ← feature_repo, models ← orchestration
    lakehouse.feast_delta, lakehouse.feast_online and models.explain import nothing else of the
    project;
    models never imports Dagster.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lakehouse", "models", "orchestration", "feature_repo")
CORE = (
    "lakehouse.catalog",
    "lakehouse.storage",
    "lakehouse._files",
    "lakehouse.commit",
    "lakehouse.config",
    "lakehouse.errors",
    "lakehouse.maintenance",
    "lakehouse.query",
    "lakehouse.cli",
)

# (who, what it may not import). A name covers the module and everything below it.
RULES: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("lakehouse",), ("models", "orchestration", "feature_repo", "dagster")),
    (
        CORE,
        (
            "lakehouse.sources",
            "lakehouse.ingest",
            "lakehouse.features",
            "lakehouse.feast_delta",
            "lakehouse.feast_online",
        ),
    ),
    (("lakehouse.sources",), ("lakehouse.ingest", "lakehouse.features")),
    (("lakehouse.ingest",), ("lakehouse.features",)),
    (("models",), ("orchestration", "feature_repo", "dagster")),
    (("feature_repo",), ("orchestration", "dagster")),
]
ISOLATED = ("lakehouse.feast_delta", "lakehouse.feast_online", "models.explain")
"""Packages that import nothing of the project outside themselves."""


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path) -> Iterator[tuple[str, str, int]]:
    """(importing module, imported module, line) of every import under ``root``'s packages."""
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = _module(path, root)
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        yield module, alias.name, node.lineno
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    yield module, node.module, node.lineno


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(root: Path) -> list[str]:
    found = []
    for importer, imported, line in imports(root):
        for who, forbidden in RULES:
            if _under(importer, who) and _under(imported, forbidden):
                found.append(f"{importer}:{line} imports {imported} (forbidden for {who[0]})")
        for package in ISOLATED:
            project = _under(imported, PACKAGES)
            if _under(importer, (package,)) and project and not _under(imported, (package,)):
                found.append(f"{importer}:{line} imports {imported} ({package} is isolated)")
    return found


def test_the_project_keeps_its_layers() -> None:
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("lakehouse/storage.py", "from models.usecase import load_use_cases\n", "models.usecase"),
        ("lakehouse/catalog.py", "def f():\n    import lakehouse.ingest.saas\n", "ingest"),
        ("models/scoring/batch.py", "import dagster\n", "dagster"),
        ("models/explain/x.py", "from models.encoding import FeatureEncoding\n", "isolated"),
        ("lakehouse/sources/saas/x.py", "from lakehouse.features import saas\n", "features"),
    ],
)
def test_a_broken_rule_is_reported(tmp_path: Path, module: str, source: str, expected: str) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    target = tmp_path / module
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source)
    [problem] = violations(tmp_path)
    assert expected in problem and target.stem in problem

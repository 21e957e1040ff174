"""docs/architecture.md's asset graph is the loaded definitions' graph, edge by edge.

The diagram names groups of asset keys (``bronze/*``, or several keys joined by ``, ``); every
asset key must fall into exactly one group, every group must hold at least one key, and the
edges between groups must be exactly the dependencies between their keys (within a group, none
are drawn).
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
NODE = re.compile(r'(\w+)\["([^"]+)"\]')
EDGE = re.compile(r"^\s*(\w+)(?:\[\"[^\"]+\"\])?\s*-->\s*(\w+)(?:\[\"[^\"]+\"\])?\s*$")


def diagram(text: str) -> tuple[dict[str, list[str]], set[tuple[str, str]]]:
    """(group id → key patterns, edges between group ids) of the doc's mermaid block."""
    block = re.search(r"```mermaid\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no mermaid asset graph"
    groups: dict[str, list[str]] = {}
    edges = set()
    for line in block.group(1).splitlines():
        for node, label in NODE.findall(line):
            groups[node] = [p.strip() for p in label.split(",")]
        edge = EDGE.match(line)
        if edge:
            edges.add((edge.group(1), edge.group(2)))
    return groups, edges


def group_of(key: str, groups: dict[str, list[str]]) -> str:
    matches = [g for g, patterns in groups.items() if any(fnmatchcase(key, p) for p in patterns)]
    assert len(matches) == 1, f"asset {key} falls into groups {matches} of the diagram"
    return matches[0]


def collapsed(
    dependencies: dict[str, set[str]], groups: dict[str, list[str]]
) -> set[tuple[str, str]]:
    """The edges between groups that the asset dependencies imply."""
    found = set()
    for key, parents in dependencies.items():
        for parent in parents:
            edge = (group_of(parent, groups), group_of(key, groups))
            if edge[0] != edge[1]:
                found.add(edge)
    return found


def loaded_dependencies() -> dict[str, set[str]]:
    from orchestration.definitions import defs

    graph = defs().resolve_asset_graph()
    return {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }


def test_the_documented_asset_graph_is_the_loaded_one() -> None:
    groups, edges = diagram(DOC.read_text())
    dependencies = loaded_dependencies()
    empty = [
        g
        for g, ps in groups.items()
        if not any(fnmatchcase(k, p) for k in dependencies for p in ps)
    ]
    assert empty == [], f"groups of the diagram with no asset: {empty}"
    actual = collapsed(dependencies, groups)
    assert sorted(actual - edges) == [], "dependencies missing from the diagram"
    assert sorted(edges - actual) == [], "edges in the diagram that the definitions do not have"


def test_a_missing_or_extra_edge_is_found() -> None:
    groups, edges = diagram(
        '```mermaid\nflowchart LR\n  a["x/*"] --> b["y/1, y/2"]\n  b --> c["z"]\n```\n'
    )
    assert edges == {("a", "b"), ("b", "c")}
    dependencies = {"x/1": set(), "y/1": {"x/1"}, "y/2": {"y/1"}, "z": {"x/1"}}
    assert collapsed(dependencies, groups) == {("a", "b"), ("a", "c")}
    with pytest.raises(AssertionError, match="falls into groups"):
        collapsed({"w/1": {"x/1"}}, groups)

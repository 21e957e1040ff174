"""Write a version's model card, log it to the version's MLflow run, tag the version with it.

Files: ``model_card.html`` (self-contained) and ``model_card.md`` under ``out`` (default
``{SCOREHOUSE_HOME}/reports/model_cards/<model>/v<version>``), logged as the run's
``model_card/`` artifacts; the version's ``model_card`` tag holds the HTML's artifact URI
(``runs:/<run>/model_card/model_card.html``), so the card is one click from the version.
Approvals are version tags ``approval.<role>`` (``record_approval``), which the card lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lakehouse.config import scorehouse_home
from lakehouse.storage import Lakehouse
from models.card.content import APPROVAL_PREFIX, build_card
from models.card.render import to_html, to_markdown
from models.lifecycle.registry import ModelRegistry
from models.usecase.spec import UseCase

ARTIFACT_FOLDER = "model_card"
CARD_TAG = "model_card"
HTML_NAME, MARKDOWN_NAME = "model_card.html", "model_card.md"


@dataclass(frozen=True)
class CardFiles:
    html: Path
    markdown: Path
    artifact_uri: str | None
    """Where MLflow holds the HTML (None when not logged)."""


def default_folder(model_name: str, version: str) -> Path:
    return scorehouse_home() / "reports" / "model_cards" / model_name / f"v{version}"


def write_card(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    version: str,
    out: Path | None = None,
    *,
    log_to_mlflow: bool = True,
) -> CardFiles:
    """Build and write both files; with ``log_to_mlflow``, log them and tag the version."""
    card = build_card(registry, lake, use_case, version)
    folder = out or default_folder(use_case.model_name, version)
    folder.mkdir(parents=True, exist_ok=True)
    html, markdown = folder / HTML_NAME, folder / MARKDOWN_NAME
    # Written beside, then renamed: a reader never sees half a card.
    for path, text in ((html, to_html(card)), (markdown, to_markdown(card))):
        partial = path.with_suffix(path.suffix + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    uri = None
    run_id = registry.version(version).run_id
    if log_to_mlflow and run_id:
        registry.client.log_artifact(run_id, str(html), ARTIFACT_FOLDER)
        registry.client.log_artifact(run_id, str(markdown), ARTIFACT_FOLDER)
        uri = f"runs:/{run_id}/{ARTIFACT_FOLDER}/{HTML_NAME}"
        registry.tag_version(version, {CARD_TAG: uri})
    return CardFiles(html, markdown, uri)


def record_approval(
    registry: ModelRegistry, version: str, role: str, by: str, note: str = ""
) -> dict[str, str]:
    """Record an approval of ``version`` as its ``approval.<role>`` tag; returns the entry."""
    if not role.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"approval role {role!r}: letters, digits, '-' and '_' only")
    if not by.strip():
        raise ValueError("an approval names who approved (--by)")
    entry = {"by": by.strip(), "at": datetime.now(UTC).isoformat(timespec="seconds"), "note": note}
    registry.tag_version(version, {f"{APPROVAL_PREFIX}{role}": json.dumps(entry)})
    return entry

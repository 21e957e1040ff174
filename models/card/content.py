"""What a model card says, read from MLflow and the Delta tables; nothing is invented.

Every section is built from stored facts: the version's tags, params and metrics and its
training run's plots (MLflow); the training set at the recorded version; the use case's model
decisions, monitoring performance and drift, explanation agreement and fairness tables. Where a
source does not exist yet the section says so ("no matured vintage yet") instead of a figure.
Confidence intervals of ROC-AUC are Hanley & McNeil's (1982) normal approximation from the
positives and negatives counted.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from lakehouse.storage import Lakehouse
from models.card.render import Block, Card, Facts, Image, Section, Table, Text
from models.evidence.plots import agreement_png, fairness_png
from models.lifecycle.registry import ModelRegistry
from models.usecase.spec import UseCase

APPROVAL_PREFIX = "approval."
Z95 = 1.959964


def auc_interval(auc: float, positives: int, negatives: int) -> tuple[float, float]:
    """95 % interval of a ROC-AUC (Hanley & McNeil); NaN when a class is empty."""
    if not (positives and negatives) or not math.isfinite(auc):
        return math.nan, math.nan
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    half = Z95 * math.sqrt(max(variance, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


class CardSources:
    """Reads for one version's card (MLflow and the lakehouse)."""

    def __init__(
        self, registry: ModelRegistry, lake: Lakehouse, use_case: UseCase, version: str
    ) -> None:
        self.registry, self.lake, self.use_case = registry, lake, use_case
        self.version = registry.version(version)
        self.tags: dict[str, str] = dict(self.version.tags or {})
        run = registry.client.get_run(self.version.run_id) if self.version.run_id else None
        self.params: dict[str, str] = dict(run.data.params) if run else {}
        self.metrics: dict[str, float] = dict(run.data.metrics) if run else {}

    def table(self, name: str, where: pl.Expr | None = None) -> pl.DataFrame | None:
        if not self.lake.exists(name):
            return None
        frame = self.lake.read(name)
        return frame.filter(where) if where is not None else frame

    def of_version(self, name: str) -> pl.DataFrame | None:
        return self.table(name, pl.col("model_version") == str(self.version.version))

    def artifact(self, path: str) -> bytes | None:
        if not self.version.run_id:
            return None
        try:
            with tempfile.TemporaryDirectory() as folder:
                local = self.registry.client.download_artifacts(self.version.run_id, path, folder)
                return Path(local).read_bytes()
        except Exception:  # an artifact store without the file: the card says so
            return None


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def purpose(src: CardSources) -> Section:
    uc, v = src.use_case, src.version
    label = uc.label.definition
    aliases = src.registry.aliases().get(str(v.version), [])
    policy = uc.scoring
    return Section(
        "purpose",
        "Purpose and intended use",
        [
            Text(uc.description or f"The {uc.name} model."),
            Facts(
                (
                    ("model", f"{uc.model_name} version {v.version}"),
                    ("aliases now", ", ".join(aliases) or "none"),
                    ("scored entity", f"{uc.entity.name} ({uc.entity.join_key})"),
                    (
                        "prediction",
                        f"probability that {label.column} = 1 within {label.horizon_days} days "
                        f"(labels mature after {label.maturity_days} days)",
                    ),
                    ("risk bands (lower PD bounds)", json.dumps(dict(policy.bands))),
                    (
                        "decision",
                        f"{policy.decision_above} at or above {policy.decision_threshold:g}, "
                        f"else {policy.decision_below}; {policy.reasons} reason codes each",
                    ),
                    ("code version", src.tags.get("code_version", "not recorded")),
                    ("MLflow run", v.run_id or "none"),
                )
            ),
        ],
    )


def data(src: CardSources) -> Section:
    uc = src.use_case
    ts_version = _int(src.tags.get("training_set_version"))
    blocks: list[Block] = []
    facts = [
        ("training set", f"{uc.tables.training_set} version {ts_version}"),
        ("feature service", src.tags.get("feature_service", "not recorded")),
        ("split", src.tags.get("split.kind", "not recorded")),
    ]
    if ts_version is not None and ts_version >= 0 and src.lake.exists(uc.tables.training_set):
        frame = src.lake.read(uc.tables.training_set, version=ts_version)
        label = uc.label.definition.column
        facts += [
            ("rows", f"{frame.height:,}"),
            ("as-of dates", f"{frame['as_of_date'].min()!s} … {frame['as_of_date'].max()!s}"),
            ("label rate", f"{frame[label].cast(pl.Float64).mean()!s:.6}"),
        ]
    else:
        facts.append(("rows", "the training-set version is not readable"))
    counts = [(s, src.params.get(f"rows_{s}"), src.params.get(f"positives_{s}")) for s in SPLITS]
    blocks.append(Facts(tuple(facts)))
    blocks.append(
        Table(
            pl.DataFrame(
                {
                    "split": [c[0] for c in counts],
                    "rows": [_int(c[1]) for c in counts],
                    "positives": [_int(c[2]) for c in counts],
                },
                schema={"split": pl.String, "rows": pl.Int64, "positives": pl.Int64},
            ),
            "rows per split (MLflow params)",
        )
    )
    versions = json.loads(src.tags.get("source_versions", "{}") or "{}")
    blocks.append(
        Table(
            pl.DataFrame(
                {"table": list(versions), "delta_version": [int(x) for x in versions.values()]},
                schema={"table": pl.String, "delta_version": pl.Int64},
            ),
            "input table versions the training set was built from",
        )
    )
    return Section("data", "Data and versions", blocks)


SPLITS = ("train", "validation", "test")


def features(src: CardSources) -> Section:
    uc = src.use_case
    enc = uc.encoding
    view_of = {c: v.name for v in uc.features.views for c in v.columns}
    constraints = uc.design.monotone_constraints
    frame = pl.DataFrame(
        {
            "feature": enc.names,
            "type": [str(t) for t in enc.features.values()],
            "view": [view_of.get(n, "") for n in enc.names],
            "encoding": ["category code" if n in enc.categories else "numeric" for n in enc.names],
            "monotone": [
                {1: "increasing", -1: "decreasing"}.get(constraints.get(n, 0), "–")
                for n in enc.names
            ],
            "reason code": [uc.reasons[n].code if n in uc.reasons else "–" for n in enc.names],
        }
    )
    protected = ", ".join(uc.protected_attributes) or "none declared"
    return Section(
        "features",
        "Features and constraints",
        [
            Table(frame, f"{len(enc.names)} features of {enc.feature_service}, in model order"),
            Text(
                f"Protected attributes: {protected}. The spec loader refuses them as features or "
                "reason codes; they are read only to record fairness evidence."
            ),
        ],
    )


def _split_metrics(src: CardSources) -> pl.DataFrame:
    rows = []
    for split in ("validation", "test"):
        auc = src.metrics.get(f"{split}_roc_auc")
        if auc is None:
            continue
        n, pos = _int(src.params.get(f"rows_{split}")), _int(src.params.get(f"positives_{split}"))
        low, high = auc_interval(auc, pos or 0, (n or 0) - (pos or 0))
        rows.append(
            {
                "split": split,
                "roc_auc": auc,
                "ci95_low": low,
                "ci95_high": high,
                "pr_auc": src.metrics.get(f"{split}_pr_auc"),
                "ece": src.metrics.get(f"{split}_ece"),
                "rows": n,
                "positives": pos,
            }
        )
    return pl.DataFrame(rows) if rows else pl.DataFrame()


def performance(src: CardSources) -> Section:
    blocks: list[Block] = [Table(_split_metrics(src), "held-out splits at training (MLflow)")]
    truth = {k: v for k, v in src.metrics.items() if k.startswith("oot_truth_")}
    if truth:
        blocks.append(
            Table(
                pl.DataFrame({"metric": list(truth), "value": list(truth.values())}),
                "against the simulator's true probabilities on the same rows (evaluation only)",
            )
        )
    vintages = src.of_version(src.use_case.tables.monitoring.performance)
    if vintages is None or vintages.is_empty():
        blocks.append(Text("No matured vintage yet: no scored day of this version has labels."))
    else:
        rows = vintages.sort("as_of_date").with_columns(
            pl.struct("roc_auc", "positives", "labelled")
            .map_elements(
                lambda r: list(
                    auc_interval(
                        r["roc_auc"] or math.nan, r["positives"], r["labelled"] - r["positives"]
                    )
                ),
                return_dtype=pl.List(pl.Float64),
            )
            .alias("_ci")
        )
        rows = rows.with_columns(
            pl.col("_ci").list.get(0).alias("ci95_low"),
            pl.col("_ci").list.get(1).alias("ci95_high"),
        )
        columns = [
            "as_of_date",
            "model_alias",
            "labelled",
            "positives",
            "roc_auc",
            "ci95_low",
            "ci95_high",
            "pr_auc",
            "ece",
            "label_coverage",
        ]
        blocks.append(Table(rows.select(columns), "matured vintages (monitoring)"))
    return Section("performance", "Performance by vintage", blocks)


def calibration(src: CardSources) -> Section:
    blocks: list[Block] = []
    ece = {s: src.metrics.get(f"{s}_ece") for s in ("validation", "test")}
    blocks.append(
        Facts(tuple((f"{s} expected calibration error", _fmt(v)) for s, v in ece.items()))
    )
    plot = src.artifact("plots/calibration.png")
    blocks.append(Image(plot, "calibration") if plot else Text("No calibration plot was logged."))
    fairness = _latest_fairness(src)
    if fairness is not None and fairness["matured"].sum() > 0:
        blocks.append(
            Table(
                fairness.filter(pl.col("matured") > 0).select(
                    "attribute",
                    "group",
                    "matured",
                    "mean_pd",
                    "observed_default_rate",
                    "calibration_gap",
                ),
                "PD calibration by group (matured rows of the latest evaluated run)",
            )
        )
    else:
        blocks.append(Text("PD calibration by group: no matured labels for a scored run yet."))
    return Section("calibration", "Calibration", blocks)


def stability(src: CardSources) -> Section:
    drift = src.of_version(src.use_case.tables.monitoring.feature_drift)
    if drift is None or drift.is_empty():
        return Section(
            "stability",
            "Stability (PSI of inputs and score)",
            [Text("No monitored scoring day of this version yet: no PSI to report.")],
        )
    latest = drift["as_of_date"].max()
    summary = (
        drift.group_by("feature", "kind")
        .agg(
            pl.col("psi").filter(pl.col("as_of_date") == latest).first().alias("psi_latest"),
            pl.col("psi").max().alias("psi_max"),
            pl.col("as_of_date").n_unique().alias("days"),
            (pl.col("status") == "alert").sum().alias("alert_days"),
        )
        .sort(  # ties (PSI 0 of unchanged inputs) in name order: the same card every time
            ["psi_max", "kind", "feature"], descending=[True, False, False], nulls_last=True
        )
    )
    return Section(
        "stability",
        "Stability (PSI of inputs and score)",
        [
            Text(
                f"Against the training reference; {drift['as_of_date'].n_unique()} monitored "
                f"days up to {latest!s}."
            ),
            Table(summary, "PSI per input and of the score"),
        ],
    )


def _latest_per_run(frame: pl.DataFrame) -> pl.DataFrame:
    """The latest computation of each scoring run (re-computations append)."""
    latest = frame.group_by("scoring_run_id").agg(pl.col("computed_at").max())
    return frame.join(latest, on=["scoring_run_id", "computed_at"], how="semi")


def explainability(src: CardSources) -> Section:
    uc = src.use_case
    blocks: list[Block] = [
        Text(
            "TreeSHAP values (exact, additive in log-odds) are the system of record: every "
            "prediction stores its full SHAP vector and its reason codes come from it."
        )
    ]
    summary = src.artifact("plots/shap_summary.png")
    blocks.append(Image(summary, "SHAP summary") if summary else Text("No SHAP summary logged."))
    if uc.explanations is None:
        blocks.append(Text("The spec asks for no LIME comparison."))
        return Section("explainability", "Explainability (global SHAP, SHAP–LIME)", blocks)
    tables = uc.tables.evidence
    found = src.of_version(tables.agreement)
    if found is None or found.is_empty():
        blocks.append(
            Text("No SHAP–LIME agreement recorded for a scoring run of this version yet.")
        )
        return Section("explainability", "Explainability (global SHAP, SHAP–LIME)", blocks)
    found = _latest_per_run(found).sort("as_of_date")
    blocks.append(
        Table(
            found.select(
                "as_of_date",
                "model_alias",
                "explained",
                "skipped_missing",
                "top_k",
                "mean_spearman",
                "sign_agreement",
                "top1_agreement",
                "alert",
                "seed",
            ),
            "SHAP–LIME agreement per scoring run",
        )
    )
    last = found.row(-1, named=True)
    lime = src.table(tables.lime, pl.col("scoring_run_id") == last["scoring_run_id"])
    explanations = src.table(
        uc.tables.scoring.explanations, pl.col("scoring_run_id") == last["scoring_run_id"]
    )
    if lime is not None and explanations is not None and lime.height:
        key = uc.entity.join_key
        lime = lime.filter(pl.col("computed_at") == lime["computed_at"].max()).sort(key)
        shap = explanations.join(lime.select(key), on=key, how="semi").sort(key)
        blocks.append(
            Image(
                agreement_png(
                    lime["spearman"].to_numpy(),
                    shap.select(uc.tables.scoring.shap_columns).to_numpy(),
                    lime.select(tables.lime_weight_columns).to_numpy(),
                    uc.encoding.names,
                ),
                "SHAP-LIME agreement",
            )
        )
    blocks.append(Text(f"LIME settings: {last['lime_settings']}"))
    return Section("explainability", "Explainability (global SHAP, SHAP–LIME)", blocks)


def _latest_fairness(src: CardSources) -> pl.DataFrame | None:
    if src.use_case.fairness is None:
        return None
    found = src.of_version(src.use_case.tables.evidence.fairness)
    if found is None or found.is_empty():
        return None
    found = _latest_per_run(found)
    last = found.filter(pl.col("as_of_date") == found["as_of_date"].max())
    return last.filter(pl.col("computed_at") == last["computed_at"].max())


def fairness(src: CardSources) -> Section:
    uc = src.use_case
    if uc.fairness is None:
        return Section("fairness", "Fairness", [Text("The spec declares no fairness evidence.")])
    latest = _latest_fairness(src)
    if latest is None:
        return Section(
            "fairness", "Fairness", [Text("No fairness evidence recorded for this version yet.")]
        )
    every = _latest_per_run(src.of_version(uc.tables.evidence.fairness))  # type: ignore[arg-type]
    alerts = every.filter(pl.col("alert"))
    return Section(
        "fairness",
        "Fairness",
        [
            Text(
                f"Adverse outcome: {latest['adverse_definition'][0]}. Alert when a group of at "
                f"least {uc.fairness.min_group_rows} rows has an adverse impact ratio below "
                f"{uc.fairness.min_adverse_impact_ratio:g}. {every['scoring_run_id'].n_unique()} "
                f"scoring runs evaluated; {alerts.height} group alerts in total."
            ),
            Table(
                latest.select(
                    "attribute",
                    "group",
                    "rows",
                    "approval_rate",
                    "adverse_impact_ratio",
                    "approval_rate_gap",
                    "mean_pd",
                    "observed_default_rate",
                    "alert",
                ),
                f"latest evaluated run ({latest['as_of_date'][0]})",
            ),
            Image(fairness_png(latest), "approval rate by group"),
        ],
    )


def limitations(src: CardSources) -> Section:
    uc = src.use_case
    items = [
        f"The label needs {uc.label.definition.maturity_days} days to mature: recent vintages "
        "cannot be judged yet, and performance figures lag by that much.",
        "Scores are probabilities under the conditions of the training window; a change in the "
        "economy or the population (see stability) can shift both inputs and their effects.",
    ]
    if src.tags.get("split.kind") == "holdout":
        items.append(
            "Validation and test rows are held-out entities of the same period, not a "
            "later period: out-of-time performance is read from matured vintages."
        )
    if uc.explanations is not None:
        items.append(
            "LIME explains perturbations around quartile bins and is approximate; rows "
            "with a missing input are not explained by LIME. SHAP is the record."
        )
    if uc.fairness is not None:
        items.append(
            "Protected attributes are those the source collects; groups smaller than "
            f"{uc.fairness.min_group_rows} rows are reported but never alert."
        )
    if uc.evaluation is not None:
        items.append(
            "The data is simulated: the truth comparison exists only for simulated worlds."
        )
    return Section("limitations", "Limitations", [Text("\n\n".join(items))])


def promotion(src: CardSources) -> Section:
    decisions = src.table(
        src.use_case.tables.decisions,
        pl.col("challenger_version") == str(src.version.version),
    )
    blocks: list[Block] = [
        Facts(
            (
                ("decision", src.tags.get("decision", "no decision recorded")),
                ("reason", src.tags.get("decision_reason", "–")),
                ("decided at", src.tags.get("decided_at", "–")),
            )
        )
    ]
    if decisions is None or decisions.is_empty():
        blocks.append(Text("No row in the model-decisions table names this version."))
    else:
        blocks.append(
            Table(
                decisions.sort("decided_at").select(
                    "decided_at",
                    "decision",
                    "champion_version",
                    "challenger_roc_auc",
                    "champion_roc_auc",
                    "challenger_calibration_error",
                    "reason",
                ),
                f"{src.use_case.tables.decisions}",
            )
        )
    oot = {
        k: v for k, v in src.metrics.items() if k.startswith(("oot_challenger_", "oot_champion_"))
    }
    if oot:
        blocks.append(
            Table(
                pl.DataFrame({"metric": sorted(oot), "value": [oot[k] for k in sorted(oot)]}),
                "evidence: challenger and champion on the challenger's out-of-time rows",
            )
        )
    return Section("promotion", "Promotion decision and evidence", blocks)


def approvals(src: CardSources) -> Section:
    found = {
        k[len(APPROVAL_PREFIX) :]: v for k, v in src.tags.items() if k.startswith(APPROVAL_PREFIX)
    }
    if not found:
        return Section(
            "approvals",
            "Approvals (MLflow)",
            [
                Text(
                    "No approval is recorded in MLflow for this version (version tags "
                    f"{APPROVAL_PREFIX}<role>; scorehouse model approve)."
                )
            ],
        )
    rows = []
    for role, raw in sorted(found.items()):
        entry: dict[str, Any] = json.loads(raw) if raw.startswith("{") else {"by": raw}
        rows.append(
            {
                "role": role,
                "by": entry.get("by"),
                "at": entry.get("at"),
                "note": entry.get("note", ""),
            }
        )
    return Section("approvals", "Approvals (MLflow)", [Table(pl.DataFrame(rows))])


def _fmt(value: float | None) -> str:
    return "not logged" if value is None or not np.isfinite(value) else f"{value:.4f}"


SECTIONS = (
    purpose,
    data,
    features,
    performance,
    calibration,
    stability,
    explainability,
    fairness,
    limitations,
    promotion,
    approvals,
)


def build_card(registry: ModelRegistry, lake: Lakehouse, use_case: UseCase, version: str) -> Card:
    """The card of one registered version (see the module docstring)."""
    src = CardSources(registry, lake, use_case, version)
    created = src.version.creation_timestamp
    return Card(
        title=f"Model card: {use_case.model_name} v{src.version.version}",
        subtitle=(
            f"Use case {use_case.name}; registered {_stamp(created)}; model documentation in the "
            "spirit of SR 11-7 and EU AI Act Annex IV, built from MLflow and the Delta tables."
        ),
        sections=[section(src) for section in SECTIONS],
    )


def _stamp(millis: int | None) -> str:
    from datetime import UTC, datetime

    if not millis:
        return "at an unknown time"
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")

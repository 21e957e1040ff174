"""One simulated lender advanced day by day, in a fixed order of events.

Day ``t`` runs, in this order:

1. on the shock day: the downturn reaches existing borrowers (incomes fall, utilisation rises);
2. new loans are booked (their count is fixed in advance from ``(seed, day)``): application
   and loan rows;
3. bureau reports of the open loans whose report day of month is today (loans booked before
   today): utilisation, inquiries and current debt-to-income are refreshed (day 0 also reports
   every seasoned borrower as the lender's starting snapshot);
4. statements of the open loans due today (``servicing.py``): payments, defaults, charge-offs,
   payoffs; closed loans get a closing row;
5. the truth at the end of day ``t`` for every loan still open, and the published indicators on
   day 0 and on the first of each month.

All state lives in numpy arrays sized for every loan the run will ever have; each day costs
O(loans) vectorised work (the truth's 12-month chain: 13 steps of 3 states per loan).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from lakehouse.sources.frames import build_frame, day_date, label, numbered_id, timestamp
from lakehouse.sources.lending import constants as cat
from lakehouse.sources.lending.book import SECONDS_PER_DAY, Book, day_of_month
from lakehouse.sources.lending.config import LendingConfig
from lakehouse.sources.lending.contract import (
    AGE_BANDS,
    CHARGE_OFF_REASONS,
    CREDIT_TRUTH_COLUMNS,
    GRADES,
    LENDING_FEEDS,
    LOAN_STATUSES,
    PURPOSES,
    REPAYMENT_STATUSES,
    SEXES,
)
from lakehouse.sources.lending.hazard import base_logit, default_probability, miss_probability
from lakehouse.sources.lending.servicing import Statements, due_today, hazard_inputs, statements
from lakehouse.sources.rng import stream

HORIZON_DAYS = 365
CLOSING_HOUR_S = 23 * 3600


@dataclass(frozen=True)
class DayOutput:
    """Everything one simulated day emits: a frame per feed plus the truth."""

    date: date
    frames: dict[str, pl.DataFrame]
    truth: pl.DataFrame


def origination_counts(config: LendingConfig) -> np.ndarray:
    """New loans per simulated day, a Poisson draw from ``(seed, day)`` only."""
    weekday0 = config.start_date.weekday()
    mean = config.origination_rate * config.loans
    return np.array(
        [
            stream(config.seed, "originations", day).poisson(
                mean * cat.ORIGINATION_WEEKDAY_FACTOR[(weekday0 + day) % 7]
            )
            for day in range(config.days)
        ],
        dtype=np.int64,
    )


class World:
    """The simulated lender; call ``step`` once per day from day 0."""

    def __init__(self, config: LendingConfig) -> None:
        self.config = config
        self._originations = origination_counts(config)
        self.book = Book(config.loans + int(self._originations.sum()), config.start_date)
        self._initial = self.book.book_initial(
            stream(config.seed, "initial"), config.loans, config.economy
        )
        self.next_day = 0

    def step(self, *, emit: bool) -> DayOutput | None:
        """Simulate the next day; build its frames only when ``emit`` (state evolves either way)."""
        cfg, book = self.config, self.book
        t = self.next_day
        self.next_day += 1
        epoch = book.start_epoch_day + t

        def rng(name: str) -> np.random.Generator:
            return stream(cfg.seed, name, t)

        economy, shock = cfg.economy_on(t), cfg.shock if cfg.shocked(t) else None
        if shock is not None and t == shock.day:
            book.shock_borrowers(rng("shock"), book.open_loans(t - 1), shock)
        booked = book.book(rng("origination"), t, int(self._originations[t]), economy, shock)

        dom = int(day_of_month(np.array([epoch]))[0])
        seasoned = book.open_loans(t - 1)  # booked before today: reports and statements
        reported = seasoned[book.report_dom[seasoned] == dom]
        book.report(rng("bureau"), reported)
        dti_effect = shock.dti_effect if shock is not None else 1.0
        unemployment = economy.unemployment_rate
        today = statements(
            book,
            rng("statements"),
            due_today(book, seasoned, epoch),
            epoch,
            t,
            cfg.hazard,
            unemployment,
            dti_effect,
        )
        if not emit:
            return None

        new = np.concatenate([self._initial, booked]) if t == 0 else booked
        # Day 0 also carries the bureau snapshot of the seasoned book the lender starts from.
        bureau = np.union1d(reported, self._initial) if t == 0 else reported
        frames = {
            "loan_applications": self._applications(new),
            "loans": self._loans(new, today.closed, epoch),
            "repayments": self._repayments(today, epoch),
            "bureau_reports": self._bureau(bureau, epoch),
            "macro_indicators": self._macro(t, epoch, dom),
        }
        truth = self._truth(book.open_loans(t), epoch, unemployment, dti_effect)
        return DayOutput(cfg.date_of(t), frames, truth)

    # ------------------------------------------------------------------------------ frames
    def _ids(self) -> dict[str, pl.Expr]:
        capacity = self.book.capacity
        return {
            "loan_id": numbered_id("L", "loan", capacity),
            "applicant_id": numbered_id("A", "loan", capacity),
            "application_id": numbered_id("APP", "loan", capacity),
        }

    def _applications(self, idx: np.ndarray) -> pl.DataFrame:
        b, ids = self.book, self._ids()
        return build_frame(
            LENDING_FEEDS["loan_applications"].columns,
            {
                "loan": idx,
                "at_s": b.applied_at_s[idx],
                "requested": b.requested_amount[idx],
                "term": b.term[idx],
                "purpose": b.purpose[idx],
                "income": b.income_at_application[idx],
                "employment": b.employment_years[idx],
                "dti": b.dti_at_application[idx],
                "utilization": b.utilization_at_application[idx],
                "delinquencies": b.delinquencies[idx],
                "inquiries": b.inquiries_at_application[idx],
                "score": b.bureau_score[idx],
                "age": b.age_band[idx],
                "sex": b.sex[idx],
            },
            {
                "application_id": ids["application_id"],
                "applicant_id": ids["applicant_id"],
                "applied_at": timestamp("at_s"),
                "requested_amount": pl.col("requested"),
                "term_months": pl.col("term"),
                "purpose": label("purpose", PURPOSES),
                "annual_income": pl.col("income"),
                "employment_years": pl.col("employment"),
                "debt_to_income": pl.col("dti"),
                "revolving_utilization": pl.col("utilization"),
                "delinquencies_2y": pl.col("delinquencies"),
                "inquiries_6m": pl.col("inquiries"),
                "bureau_score": pl.col("score"),
                "age_band": label("age", AGE_BANDS),
                "sex": label("sex", SEXES),
            },
            sort_by=("at_s", "loan"),
        )

    def _loans(self, booked: np.ndarray, closed: np.ndarray, epoch: int) -> pl.DataFrame:
        """Booking rows (status open) and closing rows (at 23:00 of the closing day)."""
        b, ids = self.book, self._ids()
        idx = np.concatenate([booked, closed]).astype(np.int64)
        closing = np.arange(len(idx)) >= len(booked)
        return build_frame(
            LENDING_FEEDS["loans"].columns,
            {
                "loan": idx,
                "booked_day": b.start_epoch_day + b.booked_day[idx],
                "amount": b.amount[idx],
                "term": b.term[idx],
                "rate": b.rate[idx],
                "installment": b.installment[idx],
                "grade": b.grade[idx],
                "purpose": b.purpose[idx],
                "status": np.where(closing, b.status[idx], 0),
                "closed_day": np.full(len(idx), epoch),
                "closing": closing,
                "reason": np.where(closing, b.charge_off_reason[idx], -1),
                "at_s": np.where(
                    closing, epoch * SECONDS_PER_DAY + CLOSING_HOUR_S, b.booked_at_s[idx]
                ),
            },
            {
                "loan_id": ids["loan_id"],
                "application_id": ids["application_id"],
                "applicant_id": ids["applicant_id"],
                "originated_on": day_date("booked_day"),
                "amount": pl.col("amount"),
                "term_months": pl.col("term"),
                "interest_rate": pl.col("rate"),
                "installment": pl.col("installment"),
                "grade": label("grade", GRADES),
                "purpose": label("purpose", PURPOSES),
                "status": label("status", LOAN_STATUSES),
                "closed_on": pl.when(pl.col("closing")).then(day_date("closed_day")),
                "charge_off_reason": label("reason", CHARGE_OFF_REASONS),
                "updated_at": timestamp("at_s"),
            },
            sort_by=("at_s", "loan"),
        )

    def _repayments(self, today: Statements, epoch: int) -> pl.DataFrame:
        return build_frame(
            LENDING_FEEDS["repayments"].columns,
            {
                "loan": today.loan,
                "number": today.number,
                "amount_due": today.amount_due,
                "amount_paid": today.amount_paid,
                "status": today.status,
                "dpd": today.days_past_due,
                "balance": today.balance,
            },
            {
                "loan_id": self._ids()["loan_id"],
                "statement_number": pl.col("number"),
                "due_date": pl.lit(epoch).cast(pl.Int32).cast(pl.Date),
                "amount_due": pl.col("amount_due"),
                "amount_paid": pl.col("amount_paid"),
                "status": label("status", REPAYMENT_STATUSES),
                "days_past_due": pl.col("dpd"),
                "balance": pl.col("balance"),
            },
            sort_by=("loan",),
        )

    def _bureau(self, idx: np.ndarray, epoch: int) -> pl.DataFrame:
        b = self.book
        return build_frame(
            LENDING_FEEDS["bureau_reports"].columns,
            {
                "loan": idx,
                "utilization": b.reported_utilization[idx],
                "dti": b.reported_dti[idx],
                "inquiries": b.reported_inquiries[idx],
            },
            {
                "applicant_id": self._ids()["applicant_id"],
                "reported_on": pl.lit(epoch).cast(pl.Int32).cast(pl.Date),
                "revolving_utilization": pl.col("utilization"),
                "debt_to_income": pl.col("dti"),
                "inquiries_6m": pl.col("inquiries"),
            },
            sort_by=("loan",),
        )

    def _macro(self, t: int, epoch: int, dom: int) -> pl.DataFrame:
        economy = self.config.economy_on(t)
        published = t == 0 or dom == 1
        n = int(published)
        return build_frame(
            LENDING_FEEDS["macro_indicators"].columns,
            {
                "day": np.full(n, epoch),
                "unemployment": np.full(n, economy.unemployment_rate),
                "base_rate": np.full(n, economy.base_rate),
            },
            {
                "published_on": day_date("day"),
                "unemployment_rate": pl.col("unemployment"),
                "base_rate": pl.col("base_rate"),
            },
        )

    def _truth(
        self, idx: np.ndarray, epoch: int, unemployment: float, dti_effect: float
    ) -> pl.DataFrame:
        """``pd_12m`` (``hazard.default_probability``) of every loan open at the end of today."""
        b, coef = self.book, self.config.hazard
        base = base_logit(hazard_inputs(b, idx), coef, unemployment, dti_effect)
        cycles = b.cycles[idx]
        done = b.statements_to_date(idx, epoch)
        ahead = b.statements_to_date(idx, epoch + HORIZON_DAYS) - done
        performing = ~b.defaulted[idx]
        pd_12m = np.ones(len(idx))
        pd_12m[performing] = default_probability(
            base[performing],
            cycles[performing],
            done[performing] + 1,
            ahead[performing],
            b.term[idx][performing],
            coef,
        )
        return build_frame(
            CREDIT_TRUTH_COLUMNS,
            {"loan": idx, "pd": pd_12m, "miss": miss_probability(base, cycles, coef)},
            {
                "loan_id": self._ids()["loan_id"],
                "as_of_date": pl.lit(epoch).cast(pl.Int32).cast(pl.Date),
                "pd_12m": pl.col("pd"),
                "miss_probability": pl.col("miss"),
            },
        )

"""Monthly statements: who pays, who misses, who cures, defaults, charge-offs and payoffs.

``statements`` applies the transitions of ``hazard.py`` to the loans due today and returns the
statement rows plus the loans that closed. One uniform per loan slot and purpose is drawn every
day, so a run with a shock and one without draw the same numbers before the shock and stay
aligned afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lakehouse.sources.lending.book import (
    BANKRUPTCY,
    CHARGED_OFF,
    DELINQUENCY,
    PAID_OFF,
    Book,
    balance_after,
)
from lakehouse.sources.lending.contract import REPAYMENT_STATUSES
from lakehouse.sources.lending.hazard import (
    CHARGE_OFF_CYCLES,
    DEFAULT_CYCLES,
    HazardCoefficients,
    HazardInputs,
    base_logit,
    miss_probability,
)

PAID, PARTIAL, MISSED = (REPAYMENT_STATUSES.index(s) for s in ("paid", "partial", "missed"))


@dataclass(frozen=True)
class Statements:
    """Today's statements (one row per loan due) and the loans that closed today."""

    loan: np.ndarray
    number: np.ndarray
    amount_due: np.ndarray
    amount_paid: np.ndarray
    status: np.ndarray
    days_past_due: np.ndarray
    balance: np.ndarray
    closed: np.ndarray


def hazard_inputs(book: Book, idx: np.ndarray) -> HazardInputs:
    """What the lender knows about loans ``idx`` now (application and latest bureau report)."""
    return HazardInputs(
        bureau_score=book.bureau_score[idx].astype(np.float64),
        debt_to_income=book.reported_dti[idx],
        utilization=book.reported_utilization[idx],
        delinquencies=book.delinquencies[idx],
        inquiries=book.reported_inquiries[idx],
        employment_years=book.employment_years[idx],
        term_months=book.term[idx],
    )


def due_today(book: Book, open_loans: np.ndarray, epoch_day: int) -> np.ndarray:
    """The open loans with a statement due on ``epoch_day``."""
    day = np.array([epoch_day])
    month = day.astype("datetime64[D]").astype("datetime64[M]")
    dom = int((day.astype("datetime64[D]") - month).astype(np.int64)[0]) + 1
    months = int(month.astype(np.int64)[0]) - book.booked_month[open_loans]
    return open_loans[(book.due_dom[open_loans] == dom) & (months >= 1)]


def statements(
    book: Book,
    rng: np.random.Generator,
    due: np.ndarray,
    epoch_day: int,
    day: int,
    coef: HazardCoefficients,
    unemployment: float,
    dti_effect: float,
) -> Statements:
    """Run today's statements of loans ``due`` and update the book (see ``hazard.py``)."""
    u_miss, u_bankrupt, u_cure, u_prepay = (rng.random(book.born)[due] for _ in range(4))
    number = book.statements_to_date(due, epoch_day)
    term, before = book.term[due], book.cycles[due]
    past_term = number > term
    base = base_logit(hazard_inputs(book, due), coef, unemployment, dti_effect)
    miss = u_miss < miss_probability(base, before, coef)
    bankrupt = miss & ~past_term & (u_bankrupt < coef.bankruptcy_share)
    cure = ~miss & (u_cure < coef.cure)
    owed_now = before + ~past_term  # installments due: arrears plus the current one

    # Installments paid today and the cycles in arrears after the statement.
    paid_now = np.where(miss, 0, np.where(cure | (before == 0) | past_term, owed_now, 2))
    paid_now = np.minimum(paid_now, owed_now)
    after = owed_now - paid_now
    paid = book.paid[due] + paid_now
    paid_off = ~miss & (paid >= term)
    prepaid = ~miss & ~paid_off & (before == 0) & (u_prepay < coef.prepayment)
    balance = balance_after(book.amount[due], book.rate[due], book.installment[due], paid)
    amount_due = np.round(book.installment[due] * owed_now, 2)
    amount_paid = np.round(book.installment[due] * paid_now + np.where(prepaid, balance, 0.0), 2)
    balance = np.where(paid_off | prepaid, 0.0, balance)

    charged = bankrupt | (miss & past_term) | (after >= CHARGE_OFF_CYCLES)
    book.paid[due] = paid
    book.cycles[due] = after
    newly = ~book.defaulted[due] & (charged | (after >= DEFAULT_CYCLES))
    book.defaulted[due[newly]] = True
    closing = charged | paid_off | prepaid
    closed = due[closing]
    book.closed_day[closed] = day
    book.status[closed] = np.where(charged[closing], CHARGED_OFF, PAID_OFF)
    book.charge_off_reason[due[charged]] = np.where(bankrupt[charged], BANKRUPTCY, DELINQUENCY)
    status = np.where(miss, MISSED, np.where(after > 0, PARTIAL, PAID))
    return Statements(
        loan=due,
        number=number,
        amount_due=amount_due,
        amount_paid=amount_paid,
        status=status,
        days_past_due=after * 30,
        balance=balance,
        closed=closed,
    )

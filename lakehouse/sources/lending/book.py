"""The loan book: every applicant and loan the run will ever have, as parallel numpy arrays.

Applicant ``i`` has application ``APP-{i+1:07d}`` and loan ``L{i+1:07d}`` (one loan each), so
indices are stable. Arrays are sized once for the seasoned initial book plus every origination
of the run (their daily counts are fixed in advance from ``(seed, day)``).

Calendar: loan ``i`` is booked on simulation day ``booked_day`` (negative for the initial book)
and its statement ``k`` (k = 1, 2, …) is due on day ``due_dom`` of the ``k``-th month after
booking (``due_dom`` = the booking day of month, at most 28, so every month has it).
"""

from __future__ import annotations

from datetime import date

import numpy as np

from lakehouse.sources.lending import constants as cat
from lakehouse.sources.lending.config import EconomicShock, Economy
from lakehouse.sources.lending.contract import TERMS

NEVER = np.iinfo(np.int32).max
"""``closed_day`` of an open loan."""
OPEN, PAID_OFF, CHARGED_OFF = 0, 1, 2  # LOAN_STATUSES codes
DELINQUENCY, BANKRUPTCY = 0, 1  # CHARGE_OFF_REASONS codes
SECONDS_PER_DAY = 86_400


def month_index(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of epoch days."""
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def day_of_month(days: np.ndarray) -> np.ndarray:
    """1-31 of epoch days."""
    as_dates = days.astype("datetime64[D]")
    return (as_dates - as_dates.astype("datetime64[M]")).astype(np.int64) + 1


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def payment(amount: np.ndarray, rate_pct: np.ndarray, term: np.ndarray) -> np.ndarray:
    """Monthly installment of an amortising loan, rounded to cents."""
    r = rate_pct / 1200.0
    return np.round(amount * r / (1.0 - (1.0 + r) ** (-term.astype(np.float64))), 2)


def balance_after(
    amount: np.ndarray, rate_pct: np.ndarray, installment: np.ndarray, paid: np.ndarray
) -> np.ndarray:
    """Outstanding principal after ``paid`` installments (0 once fully repaid)."""
    growth = (1.0 + rate_pct / 1200.0) ** paid.astype(np.float64)
    owed = amount * growth - installment * (growth - 1.0) / (rate_pct / 1200.0)
    return np.round(np.maximum(owed, 0.0), 2)


class Book:
    """Applicant, loan and servicing arrays of capacity ``capacity``; loans ``0..born-1`` exist."""

    def __init__(self, capacity: int, start_date: date) -> None:
        self.start_epoch_day = int(np.datetime64(start_date, "D").astype(np.int64))
        self.born = 0
        i64, f64 = np.int64, np.float64
        # Application (what the applicant declared and the bureau said at application).
        self.applied_at_s = np.zeros(capacity, dtype=i64)
        self.booked_at_s = np.zeros(capacity, dtype=i64)
        self.age_band = np.zeros(capacity, dtype=i64)
        self.sex = np.zeros(capacity, dtype=i64)
        self.purpose = np.zeros(capacity, dtype=i64)
        self.employment_years = np.zeros(capacity, dtype=i64)
        self.income_at_application = np.zeros(capacity, dtype=f64)
        self.dti_at_application = np.zeros(capacity, dtype=f64)
        self.utilization_at_application = np.zeros(capacity, dtype=f64)
        self.inquiries_at_application = np.zeros(capacity, dtype=i64)
        self.delinquencies = np.zeros(capacity, dtype=i64)
        self.bureau_score = np.zeros(capacity, dtype=i64)
        self.requested_amount = np.zeros(capacity, dtype=f64)
        # Latent borrower state (moves with the economy; seen only through bureau reports).
        self.income = np.zeros(capacity, dtype=f64)
        self.other_debt = np.zeros(capacity, dtype=f64)  # monthly payments before the loan
        self.utilization_level = np.zeros(capacity, dtype=f64)
        self.utilization = np.zeros(capacity, dtype=f64)
        self.inquiry_rate = np.zeros(capacity, dtype=f64)
        self.inquiry_months = np.zeros((cat.INQUIRY_WINDOW_MONTHS, capacity), dtype=np.int16)
        self.reports = np.zeros(capacity, dtype=i64)
        # Latest reported values: what the lender knows (application, then bureau reports).
        self.reported_utilization = np.zeros(capacity, dtype=f64)
        self.reported_dti = np.zeros(capacity, dtype=f64)
        self.reported_inquiries = np.zeros(capacity, dtype=i64)
        # Loan terms.
        self.booked_day = np.zeros(capacity, dtype=i64)
        self.booked_month = np.zeros(capacity, dtype=i64)
        self.due_dom = np.ones(capacity, dtype=i64)
        self.report_dom = np.ones(capacity, dtype=i64)
        self.amount = np.zeros(capacity, dtype=f64)
        self.term = np.full(capacity, TERMS[0], dtype=i64)
        self.rate = np.zeros(capacity, dtype=f64)
        self.installment = np.zeros(capacity, dtype=f64)
        self.grade = np.zeros(capacity, dtype=i64)
        # Servicing state.
        self.paid = np.zeros(capacity, dtype=i64)  # installments paid
        self.cycles = np.zeros(capacity, dtype=i64)  # cycles in arrears (days past due / 30)
        self.defaulted = np.zeros(capacity, dtype=bool)
        self.closed_day = np.full(capacity, NEVER, dtype=i64)
        self.status = np.full(capacity, OPEN, dtype=i64)
        self.charge_off_reason = np.full(capacity, -1, dtype=i64)

    @property
    def capacity(self) -> int:
        return len(self.amount)

    def open_loans(self, day: int) -> np.ndarray:
        """Indices of loans booked by ``day`` and not closed on or before it."""
        born = slice(0, self.born)
        return np.flatnonzero((self.booked_day[born] <= day) & (self.closed_day[born] > day))

    def statements_to_date(self, idx: np.ndarray, epoch_day: int) -> np.ndarray:
        """Statements of loans ``idx`` due on or before ``epoch_day``."""
        day = np.array([epoch_day])
        months = month_index(day)[0] - self.booked_month[idx]
        return np.maximum(months - (day_of_month(day)[0] < self.due_dom[idx]), 0)

    # ------------------------------------------------------------------------- origination
    def book(
        self,
        rng: np.random.Generator,
        day: int,
        count: int,
        economy: Economy,
        shock: EconomicShock | None,
    ) -> np.ndarray:
        """Book ``count`` new loans on simulation ``day``; return their indices.

        ``shock`` is the shock in force for these applicants (None: the normal economy).
        """
        idx = self._new(count)
        self._applicants(rng, idx, shock)
        self._terms(rng, idx, economy)
        self._calendar(rng, idx, np.full(count, day, dtype=np.int64))
        return idx

    def book_initial(self, rng: np.random.Generator, count: int, economy: Economy) -> np.ndarray:
        """The seasoned book open on day 0: booked up to ``term - 1`` months before it, with
        their statements, payments and arrears so far."""
        idx = self._new(count)
        self._applicants(rng, idx, None)
        self._terms(rng, idx, economy)
        age = 1 + np.floor(rng.random(count) * (self.term[idx] - 1) * 30).astype(np.int64)
        self._calendar(rng, idx, -age)
        done = self.statements_to_date(idx, self.start_epoch_day - 1)
        cycles = rng.choice(len(cat.INITIAL_ARREARS_MIX), size=count, p=cat.INITIAL_ARREARS_MIX)
        cycles = np.minimum(cycles, done)
        self.cycles[idx] = cycles
        self.paid[idx] = done - cycles
        self._inquiries_since_booking(rng, idx, done)
        return idx

    def _inquiries_since_booking(
        self, rng: np.random.Generator, idx: np.ndarray, months: np.ndarray
    ) -> None:
        """The 6-month inquiry window of seasoned borrowers on day 0: the months since booking
        hold new inquiries, the application's months age out (else the first half-year of the
        world would show every borrower's application-time inquiries)."""
        window = cat.INQUIRY_WINDOW_MONTHS
        fresh = rng.poisson(self.inquiry_rate[idx], size=(window, len(idx))).astype(np.int16)
        shift = np.minimum(months, window)
        source = np.arange(window)[:, None] + shift[None, :]  # application slot of each month
        kept = np.take_along_axis(
            self.inquiry_months[:, idx], np.minimum(source, window - 1), axis=0
        )
        self.inquiry_months[:, idx] = np.where(source < window, kept, fresh)
        self.reported_inquiries[idx] = self.inquiry_months[:, idx].sum(axis=0)

    def _new(self, count: int) -> np.ndarray:
        idx = np.arange(self.born, self.born + count)
        self.born += count
        return idx

    def _calendar(self, rng: np.random.Generator, idx: np.ndarray, days: np.ndarray) -> None:
        n = len(idx)
        epoch = self.start_epoch_day + days
        self.booked_day[idx] = days
        self.booked_month[idx] = month_index(epoch)
        self.due_dom[idx] = np.minimum(day_of_month(epoch), 28)
        self.report_dom[idx] = rng.integers(1, 29, size=n)
        applied = epoch * SECONDS_PER_DAY + rng.integers(8 * 3600, 17 * 3600, n)
        self.applied_at_s[idx] = applied
        self.booked_at_s[idx] = applied + rng.integers(600, 6 * 3600, n)  # same day, by 23:00

    def _applicants(
        self, rng: np.random.Generator, idx: np.ndarray, shock: EconomicShock | None
    ) -> None:
        n = len(idx)
        age = rng.choice(len(cat.AGE_MIX), size=n, p=cat.AGE_MIX)
        income = cat.AGE_INCOME_MEDIAN[age] * np.exp(rng.normal(0.0, cat.INCOME_LOG_SD, n))
        if shock is not None:
            income *= shock.income_factor
        income = np.round(np.maximum(income, cat.INCOME_FLOOR), -2)
        employment = np.floor(rng.exponential(cat.AGE_EMPLOYMENT_MEAN_YEARS[age]))
        level = rng.beta(*cat.UTILIZATION_BETA, size=n)
        if shock is not None:
            level += shock.utilization_shift
        utilization = np.clip(
            level + rng.normal(0.0, cat.UTILIZATION_NOISE_SD, n), 0.0, cat.UTILIZATION_MAX
        )
        delinquencies = rng.poisson(
            cat.DELINQUENCY_RATE + cat.DELINQUENCY_HIGH_UTILIZATION * (level > 0.7)
        )
        inquiry_rate = rng.gamma(*cat.INQUIRY_RATE_GAMMA, size=n)
        # Inquiries of each of the 6 months before the application (oldest first), plus the
        # application's own in the latest month.
        months = rng.poisson(inquiry_rate, size=(cat.INQUIRY_WINDOW_MONTHS, n))
        months[-1] += 1
        inquiries = months.sum(axis=0)
        score = (
            cat.SCORE_MEAN
            + cat.SCORE_UTILIZATION_EFFECT * (level - 0.42)
            + cat.SCORE_DELINQUENCY_EFFECT * delinquencies
            + cat.SCORE_INQUIRY_EFFECT * inquiries
            + rng.normal(0.0, cat.SCORE_NOISE_SD, n)
        )
        other_dti = np.minimum(rng.beta(*cat.OTHER_DTI_BETA, size=n), cat.OTHER_DTI_MAX)

        self.age_band[idx] = age
        self.sex[idx] = rng.choice(len(cat.SEX_MIX), size=n, p=cat.SEX_MIX)
        self.employment_years[idx] = np.minimum(employment, cat.MAX_EMPLOYMENT_YEARS)
        self.income_at_application[idx] = self.income[idx] = income
        self.other_debt[idx] = np.round(other_dti * income / 12.0, 2)
        self.utilization_level[idx] = level
        self.utilization[idx] = utilization
        self.utilization_at_application[idx] = np.round(utilization, 4)
        self.delinquencies[idx] = delinquencies
        self.inquiry_rate[idx] = inquiry_rate
        self.inquiries_at_application[idx] = inquiries
        # Each monthly report overwrites the oldest month (report k: slot k mod 6).
        self.inquiry_months[:, idx] = months
        self.bureau_score[idx] = np.clip(np.round(score), *cat.SCORE_RANGE).astype(np.int64)

    def _terms(self, rng: np.random.Generator, idx: np.ndarray, economy: Economy) -> None:
        n = len(idx)
        purpose = rng.choice(len(cat.PURPOSE_MIX), size=n, p=cat.PURPOSE_MIX)
        income = self.income[idx]
        requested = (
            cat.PURPOSE_AMOUNT_MEDIAN[purpose]
            * np.sqrt(income / 60_000.0)
            * np.exp(rng.normal(0.0, cat.AMOUNT_LOG_SD, n))
        )
        requested = np.round(np.clip(requested, *cat.AMOUNT_RANGE), -2)
        amount = np.round(np.minimum(requested, cat.MAX_LOAN_TO_INCOME * income), -2)
        amount = np.maximum(amount, cat.AMOUNT_RANGE[0])
        long_term = rng.random(n) < _sigmoid(
            cat.LONG_TERM_SLOPE * np.log(amount / 15_000.0) + cat.LONG_TERM_SHIFT
        )
        term = np.where(long_term, TERMS[1], TERMS[0]).astype(np.int64)
        other_dti = self.other_debt[idx] / (income / 12.0)
        z = (
            (self.bureau_score[idx] - 700.0) / 50.0
            - 2.0 * (other_dti - 0.3)
            - 0.15 * self.delinquencies[idx]
        )
        grade = (z < cat.GRADE_Z_BOUNDS[:, None]).sum(axis=0)
        rate = np.round(
            economy.base_rate + cat.GRADE_SPREAD[grade] + cat.LONG_TERM_PREMIUM * long_term, 2
        )
        installment = payment(amount, rate, term)
        dti = (self.other_debt[idx] + installment) / (income / 12.0)

        self.purpose[idx] = purpose
        self.requested_amount[idx] = requested
        self.amount[idx] = amount
        self.term[idx] = term
        self.grade[idx] = grade
        self.rate[idx] = rate
        self.installment[idx] = installment
        self.dti_at_application[idx] = np.round(dti, 4)
        self.reported_utilization[idx] = self.utilization_at_application[idx]
        self.reported_dti[idx] = self.dti_at_application[idx]
        self.reported_inquiries[idx] = self.inquiries_at_application[idx]

    # ------------------------------------------------------------------------------ shock
    def shock_borrowers(
        self, rng: np.random.Generator, idx: np.ndarray, shock: EconomicShock
    ) -> None:
        """The downturn reaches existing borrowers ``idx``: incomes fall, utilisation rises."""
        lose = rng.random(self.born)[idx] < shock.job_loss_share
        factor = np.where(lose, shock.job_loss_income, shock.existing_income_factor)
        self.income[idx] *= factor
        self.utilization_level[idx] += shock.utilization_shift

    # ------------------------------------------------------------------- bureau reports
    def report(self, rng: np.random.Generator, idx: np.ndarray) -> None:
        """Monthly bureau refresh of borrowers ``idx``: utilisation, inquiries, current DTI."""
        n = len(idx)
        step = rng.normal(0.0, cat.UTILIZATION_STEP_SD, n)
        new_inquiries = rng.poisson(self.inquiry_rate[idx])
        utilization = self.utilization[idx]
        utilization += cat.UTILIZATION_REVERSION * (self.utilization_level[idx] - utilization)
        utilization = np.clip(utilization + step, 0.0, cat.UTILIZATION_MAX)
        self.utilization[idx] = utilization
        slot = self.reports[idx] % cat.INQUIRY_WINDOW_MONTHS
        self.inquiry_months[slot, idx] = new_inquiries
        self.reports[idx] += 1
        growth = 1.0 + cat.DEBT_UTILIZATION_ELASTICITY * (
            utilization - self.utilization_at_application[idx]
        )
        debt = np.maximum(self.other_debt[idx] * growth, 0.0) + self.installment[idx]
        self.reported_utilization[idx] = np.round(utilization, 4)
        self.reported_dti[idx] = np.round(debt / (self.income[idx] / 12.0), 4)
        self.reported_inquiries[idx] = self.inquiry_months[:, idx].sum(axis=0)

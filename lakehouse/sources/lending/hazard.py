"""The monthly missed-payment hazard, the payment transitions, and the true 12-month PD.

At every statement of an open loan the borrower misses the payment with probability ``p``:

    logit p = intercept
            + b_score · (bureau_score − 700) / 50               bureau score at application
            + b_dti · m · (debt_to_income − 0.20) / 0.10        latest reported (m: regime)
            + b_util · (revolving_utilization − 0.5) / 0.25     latest reported
            + b_delinq · min(delinquencies_2y, 5)               at application
            + b_inq · min(inquiries_6m, 10)                     latest reported
            + b_emp · [employment_years < 2]                    at application
            + b_term · [term_months = 60]
            + b_arrears[min(cycles, 3)]                         cycles in arrears before it
            + b_unemp · (unemployment_rate − 4)                 published regime

``m`` is 1 before the economic shock and ``EconomicShock.dti_effect`` after it (the concept
shift: a stretched budget matters more; the reference of 0.20 is below the debt-to-income of 80 %
of borrowers, so the steeper slope raises their risk, the most for high DTI). Every input is in
the landing files by the end of the statement's day: the application, the latest bureau report,
the previous statement's days past due and the published indicators.

Transitions at a statement with ``n`` cycles in arrears (``cycles = days_past_due / 30``):

* miss: a share ``bankruptcy_share`` of misses is a bankruptcy (the loan is charged off at
  once); otherwise ``n + 1`` (before the term's last statement; past it, a miss charges off).
  The loan *defaults* the first time it reaches 3 cycles (90 days past due) and is charged off
  at 6 (180 days);
* pay with ``n = 0``: one installment; at the last statement the loan is paid off, before it
  the borrower repays the whole balance early with probability ``prepayment``;
* pay with ``n > 0``: everything due with probability ``cure`` (``n → 0``), else the current
  installment plus one in arrears (``n → n − 1``); past the term, a payment settles the loan.

The truth ``pd_12m`` at the end of day ``t`` is the exact probability that the loan defaults
(reaches 3 cycles or is charged off) at one of its statements due in ``t + 1 … t + 365`` — the
window of the label as of ``t + 1`` — under this chain, if today's inputs persisted. Inputs do
move (utilisation drifts, the economy may turn), so this is the best point-in-time value, not an
average over future paths. A loan that has already defaulted has ``pd_12m = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_CYCLES = 3
CHARGE_OFF_CYCLES = 6
REFERENCE_UNEMPLOYMENT = 4.0
DTI_REFERENCE = 0.20


@dataclass(frozen=True)
class HazardCoefficients:
    """Coefficients of the monthly missed-payment hazard (logit scale) and the transitions."""

    intercept: float = -5.1
    bureau_score: float = -0.75
    debt_to_income: float = 0.25
    utilization: float = 0.45
    delinquencies: float = 0.25
    inquiries: float = 0.08
    short_employment: float = 0.25
    long_term: float = 0.15
    arrears: tuple[float, float, float, float] = (0.0, 3.4, 4.4, 5.0)
    """By cycles in arrears before the statement: 0, 1, 2, 3 or more."""
    unemployment: float = 0.04
    bankruptcy_share: float = 0.04
    cure: float = 0.55
    prepayment: float = 0.012


@dataclass(frozen=True)
class HazardInputs:
    """Observable per-loan quantities (1-d arrays of equal length)."""

    bureau_score: np.ndarray
    debt_to_income: np.ndarray
    utilization: np.ndarray
    delinquencies: np.ndarray
    inquiries: np.ndarray
    employment_years: np.ndarray
    term_months: np.ndarray


def base_logit(
    x: HazardInputs, coef: HazardCoefficients, unemployment: float, dti_effect: float
) -> np.ndarray:
    """The logit of the miss probability without the arrears term."""
    return (
        coef.intercept
        + coef.bureau_score * (x.bureau_score - 700.0) / 50.0
        + coef.debt_to_income * dti_effect * (x.debt_to_income - DTI_REFERENCE) / 0.10
        + coef.utilization * (x.utilization - 0.5) / 0.25
        + coef.delinquencies * np.minimum(x.delinquencies, 5)
        + coef.inquiries * np.minimum(x.inquiries, 10)
        + coef.short_employment * (x.employment_years < 2)
        + coef.long_term * (x.term_months == 60)
        + coef.unemployment * (unemployment - REFERENCE_UNEMPLOYMENT)
    )


def miss_probability(base: np.ndarray, cycles: np.ndarray, coef: HazardCoefficients) -> np.ndarray:
    """Probability of missing the next payment with ``cycles`` in arrears."""
    arrears = np.asarray(coef.arrears)[np.minimum(cycles, len(coef.arrears) - 1)]
    return 1.0 / (1.0 + np.exp(-(base + arrears)))


def default_probability(
    base: np.ndarray,
    cycles: np.ndarray,
    next_statement: np.ndarray,
    statements: np.ndarray,
    term: np.ndarray,
    coef: HazardCoefficients,
) -> np.ndarray:
    """P(default at one of the next ``statements`` statements) for performing loans.

    ``cycles`` (0-2) is today's arrears, ``next_statement`` the number of the next statement
    (1 = the first after origination) and ``term`` the number of scheduled installments.
    Evaluates the module docstring's chain with today's miss probabilities.
    """
    n = len(base)
    p = np.stack([miss_probability(base, np.full(n, k), coef) for k in range(3)], axis=1)
    state = np.zeros((n, 3))
    state[np.arange(n), cycles] = 1.0
    defaulted = np.zeros(n)
    bankrupt, cure, prepay = coef.bankruptcy_share, coef.cure, coef.prepayment
    for step in range(int(statements.max(initial=0))):
        number = next_statement + step
        active = step < statements
        before_term, last = number < term, number == term
        s0, s1, s2 = state[:, 0], state[:, 1], state[:, 2]
        m0, m1, m2 = p[:, 0], p[:, 1], p[:, 2]
        if_scheduled = (
            s0 * m0 * bankrupt + s1 * m1 * bankrupt + s2 * m2,
            np.stack(
                [
                    s0 * (1 - m0) * np.where(before_term, 1 - prepay, 0.0)
                    + (s1 * (1 - m1) + s2 * (1 - m2)) * cure
                    + s1 * (1 - m1) * (1 - cure),
                    s0 * m0 * (1 - bankrupt) + s2 * (1 - m2) * (1 - cure),
                    s1 * m1 * (1 - bankrupt),
                ],
                axis=1,
            ),
        )
        # At the last scheduled statement, a loan left with nothing in arrears is paid off.
        if_scheduled[1][:, 0] *= ~last
        past_term = number > term
        newly = np.where(past_term, s1 * m1 + s2 * m2, if_scheduled[0])
        after = np.where(past_term[:, None], 0.0, if_scheduled[1])
        defaulted += np.where(active, newly, 0.0)
        state = np.where(active[:, None], after, state)
    return np.clip(defaulted, 0.0, 1.0)

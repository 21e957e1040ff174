"""Business constants of the simulated lender (applicant mixes, pricing, bureau dynamics).

Arrays are indexed like the vocabularies in ``lakehouse.sources.lending.contract`` (``PURPOSES``,
``AGE_BANDS``, ``GRADES``), so loan attributes are stored as small integer codes.
docs/lending.md lists these numbers; change them here only together with the docs.
"""

from __future__ import annotations

import numpy as np

from lakehouse.sources.lending.contract import AGE_BANDS, GRADES, PURPOSES, SEXES

# --- applicants -------------------------------------------------------------------------------
AGE_MIX = np.array([0.10, 0.27, 0.25, 0.19, 0.13, 0.06])
AGE_INCOME_MEDIAN = np.array([34_000.0, 55_000.0, 68_000.0, 72_000.0, 66_000.0, 48_000.0])
AGE_EMPLOYMENT_MEAN_YEARS = np.array([1.3, 3.5, 5.5, 7.0, 8.0, 6.0])
INCOME_LOG_SD = 0.45
INCOME_FLOOR = 12_000.0
SEX_MIX = np.array([0.48, 0.52])
MAX_EMPLOYMENT_YEARS = 10  # reported as "10+"

OTHER_DTI_BETA = (2.2, 6.5)  # debt payments before the loan over income: mean ~0.25
OTHER_DTI_MAX = 0.50
UTILIZATION_BETA = (2.0, 2.8)  # each borrower's long-run revolving utilisation, mean ~0.42
UTILIZATION_NOISE_SD = 0.07
UTILIZATION_MAX = 1.3  # over-limit balances exist
INQUIRY_RATE_GAMMA = (2.0, 0.15)  # shape, scale: inquiries per month, mean 0.3
DELINQUENCY_RATE = 0.18  # Poisson mean of delinquencies in the 2 years before application
DELINQUENCY_HIGH_UTILIZATION = 0.25  # extra mean when the long-run utilisation is above 0.7
SCORE_MEAN, SCORE_NOISE_SD = 715.0, 38.0
SCORE_UTILIZATION_EFFECT = -90.0  # points per unit of long-run utilisation above 0.42
SCORE_DELINQUENCY_EFFECT = -30.0
SCORE_INQUIRY_EFFECT = -8.0
SCORE_RANGE = (560, 850)  # the lender books nobody below 560

# --- loans --------------------------------------------------------------------------------------
PURPOSE_MIX = np.array([0.42, 0.20, 0.10, 0.07, 0.08, 0.05, 0.08])
PURPOSE_AMOUNT_MEDIAN = np.array(
    [15_000.0, 10_000.0, 14_000.0, 8_000.0, 12_000.0, 6_000.0, 7_000.0]
)
AMOUNT_LOG_SD = 0.5
AMOUNT_RANGE = (1_000.0, 40_000.0)
MAX_LOAN_TO_INCOME = 0.6
LONG_TERM_SLOPE, LONG_TERM_SHIFT = 1.5, -0.6  # P(60 months) = sigmoid(1.5 log(amount/15k) - 0.6)

# Pricing: lender score z = (score - 700)/50 - 2 (dti before the loan - 0.3) - 0.15 delinquencies,
# grade by the lower bounds below (A best); rate = base rate + grade spread (+ 1 point for 60m).
GRADE_Z_BOUNDS = np.array([0.8, 0.2, -0.4, -1.0])  # A if z >= 0.8, B >= 0.2, ... else E
GRADE_SPREAD = np.array([4.0, 7.0, 10.5, 14.5, 19.0])
LONG_TERM_PREMIUM = 1.0

ORIGINATION_WEEKDAY_FACTOR = np.array([1.2, 1.2, 1.2, 1.2, 1.2, 0.5, 0.5])  # Mon..Sun, mean 1.0
INITIAL_ARREARS_MIX = np.array([0.955, 0.028, 0.017])  # seasoned book: cycles 0, 1, 2

# --- bureau dynamics (monthly, at each report) --------------------------------------------------
UTILIZATION_REVERSION = 0.3  # share of the gap to the long-run level closed each month
UTILIZATION_STEP_SD = 0.04
DEBT_UTILIZATION_ELASTICITY = 0.8  # other debt payments grow with revolving balances
INQUIRY_WINDOW_MONTHS = 6

assert len(AGE_MIX) == len(AGE_BANDS) and len(SEX_MIX) == len(SEXES)
assert len(PURPOSE_MIX) == len(PURPOSES) and len(GRADE_SPREAD) == len(GRADES)

"""Business constants of the simulated SaaS company (prices, mixes, behavioural rates).

Every array is indexed like the vocabularies in ``lakehouse.sources.saas.contract`` (``PLANS``,
``REGIONS``, ...), so customer attributes are stored as small integer codes. docs/simulator.md
lists these numbers; change them here only together with the docs.
"""

from __future__ import annotations

import numpy as np

from lakehouse.sources.saas.contract import CHANNELS, INDUSTRIES, PLANS, REGIONS

# --- plans ----------------------------------------------------------------------------------
PLAN_LIST_PRICE = np.array([12.0, 25.0, 45.0, 70.0])
"""List price per seat per month before any price drift; also the hazard's price reference."""
PLAN_MIX = np.array([0.45, 0.33, 0.16, 0.06])
PLAN_SEATS_LOG_MEAN = np.array([1.0, 2.2, 3.3, 4.8])  # lognormal seats: ~3, ~9, ~27, ~120
PLAN_SEATS_LOG_SD = np.array([0.5, 0.6, 0.6, 0.6])
PLAN_SEATS_MAX = np.array([10, 60, 300, 2000])
PLAN_FEATURES = np.array([8, 14, 20, 24])  # features available on the plan
PLAN_DISCOUNT_PROB = np.array([0.10, 0.20, 0.40, 0.80])
PLAN_DISCOUNT_MAX = np.array([10.0, 20.0, 25.0, 35.0])  # percentage points
PLAN_TICKET_FACTOR = np.array([0.8, 1.0, 1.2, 1.5])
PLAN_RESOLUTION_FACTOR = np.array([1.3, 1.0, 0.8, 0.6])  # enterprise support is faster
PLAN_PAYMENT_EFFECT = np.array([0.2, 0.0, -0.3, -0.8])  # logit; invoiced accounts fail less

# --- acquisition ------------------------------------------------------------------------------
REGION_MIX = np.array([0.45, 0.30, 0.15, 0.10])
REGION_PAYMENT_EFFECT = np.array([-0.1, 0.0, 0.3, 0.7])  # logit; LATAM cards fail most
INDUSTRY_MIX = np.full(len(INDUSTRIES), 1.0 / len(INDUSTRIES))
CHANNEL_MIX_BY_PLAN = np.array(
    [  # organic, paid_search, referral, partner, outbound_sales
        [0.45, 0.35, 0.15, 0.05, 0.00],
        [0.35, 0.30, 0.15, 0.10, 0.10],
        [0.20, 0.15, 0.15, 0.20, 0.30],
        [0.05, 0.05, 0.10, 0.30, 0.50],
    ]
)
CHANNEL_PAYMENT_EFFECT = np.array([0.0, 0.5, -0.2, -0.2, -0.4])  # paid_search: weakest cards

# --- growth -------------------------------------------------------------------------------------
SIGNUP_WEEKDAY_FACTOR = np.array([1.2, 1.2, 1.2, 1.2, 1.2, 0.5, 0.5])  # Mon..Sun, mean 1.0
INITIAL_TENURE_MEAN_DAYS = 420.0
INITIAL_TENURE_MAX_DAYS = 1800

# --- engagement and usage ---------------------------------------------------------------------
ENGAGEMENT_BASE_SD = 0.35  # spread of customers' own long-run engagement level (log scale)
ENGAGEMENT_AR = 0.9  # day-to-day persistence of short-term noise
ENGAGEMENT_NOISE_SD = 0.12
DECLINE_START_PROB = 0.004  # per healthy customer-day: a champion leaves, a rival wins, ...
DECLINE_RECOVER_PROB = 0.015  # per declining customer-day
DECLINE_DEPTH = (0.4, 1.6)  # uniform range of the drop in log engagement
DECLINE_SPEED = 0.05  # fraction of the gap to the target closed each day
INITIAL_DECLINING_SHARE = 0.08
ADOPTION_BETA = (5.0, 3.0)  # share of seats active on a normal weekday, ~0.62
WEEKDAY_ACTIVITY = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.2, 0.15])  # Mon..Sun
MAX_ACTIVE_SHARE = 0.97
FEATURE_BREADTH = 0.4  # share of the plan's features used on an active day at engagement 0
FEATURE_ENGAGEMENT_EFFECT = 1.0  # log breadth per unit of log engagement
SESSIONS_PER_USER = 2.2
EVENTS_PER_SESSION = 14.0
MINUTES_PER_SESSION = 12.0

# --- subscription changes -----------------------------------------------------------------------
SEAT_CHANGE_PROB = 0.0007  # per customer-day (~2 % per month)
PLAN_CHANGE_PROB = 0.00025

# --- billing -----------------------------------------------------------------------------
PAYMENT_FAIL_LOGIT = -3.7  # first attempt of a healthy NA organic growth customer: ~2.4 %
RETRY_FAIL_LOGIT = -1.0  # retries often hit the same broken card: ~27 %
PAYMENT_ENGAGEMENT_EFFECT = -0.8  # logit per unit of engagement deviation (disengaged fail more)
RETRY_OFFSETS_DAYS = (3, 7, 14)  # days after the invoice of attempts 2, 3 and 4
FAILURE_REASON_MIX = np.array([0.45, 0.30, 0.15, 0.10])

# --- support ------------------------------------------------------------------------------------
TICKET_RATE = 0.011  # per customer-day at 10 seats, healthy, weekday
TICKET_SEATS_ELASTICITY = 0.35
TICKET_ENGAGEMENT_EFFECT = -0.6  # log-rate per unit of engagement deviation
TICKET_BILLING_RATE = 0.02  # extra billing tickets per day while a failed payment is recent
TICKET_WEEKDAY_FACTOR = np.array([1.15, 1.15, 1.15, 1.15, 1.1, 0.2, 0.2])
SEVERITY_LOGITS = np.array([0.0, -0.25, -1.1, -2.2])  # low, medium, high, urgent when healthy
SEVERITY_ENGAGEMENT_EFFECT = -1.0  # on high/urgent logits per unit of engagement deviation
CATEGORY_MIX = np.array([0.12, 0.30, 0.25, 0.13, 0.12, 0.08])
RESOLUTION_MEDIAN_HOURS = np.array([30.0, 16.0, 6.0, 2.5])
RESOLUTION_LOG_SD = 0.8
CSAT_RESPONSE_PROB = 0.55
CSAT_BASE = 4.3
CSAT_NOISE_SD = 0.9

assert len(PLAN_LIST_PRICE) == len(PLANS) and len(REGION_MIX) == len(REGIONS)
assert CHANNEL_MIX_BY_PLAN.shape == (len(PLANS), len(CHANNELS))

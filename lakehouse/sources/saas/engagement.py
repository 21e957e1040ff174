"""Latent engagement and the daily product usage it drives (numbers live in ``catalog.py``).

Log engagement of customer i on day t is ``level = base_i + shift_i(t) + noise_i(t)``:

* ``base_i ~ N(0, 0.35)``: the customer's own long-run level;
* ``noise`` is AR(1): ``noise_t = 0.9 noise_{t-1} + N(0, 0.12)``;
* ``shift`` models disengagement episodes: a healthy customer starts declining with probability
  0.4 %/day toward a target drop ~ U(0.4, 1.6) (closing 5 % of the gap a day), and a declining
  one recovers (target back to 0) with probability 1.5 %/day. 8 % of the initial base starts
  mid-decline.

``deviation = shift + noise`` (engagement relative to the customer's own level) also raises
payment-failure and ticket rates, so those signals co-move with disengagement. Per day:

* ``active_users ~ Binomial(seats, min(min(0.97, adoption_i * exp(level) * weekday) * drift, 1))``
  with ``adoption_i ~ Beta(5, 3)``, weekday activity 1.0 Mon-Thu, 0.95 Fri, 0.2 Sat, 0.15 Sun and
  ``drift`` the product of the ``usage_shift`` multipliers in force;
* ``features_used = clip(round(features_on_plan * 0.4 * adoption_i / 0.625 * exp(level + e)),
  1, features_on_plan)`` on days with an active user (``e``: small logistic noise), independent
  of usage drift;
* sessions, events and minutes scale with active users and engagement (emission detail only).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from lakehouse.sources.saas import constants as cat
from lakehouse.sources.saas.frames import Day, customer_id, source_frame

ADOPTION_MEAN = cat.ADOPTION_BETA[0] / sum(cat.ADOPTION_BETA)


class Engagement:
    """Latent engagement state for every customer slot (updated for all born customers)."""

    def __init__(self, capacity: int) -> None:
        self.adoption = np.zeros(capacity)
        self.base = np.zeros(capacity)
        self.noise = np.zeros(capacity)
        self.shift = np.zeros(capacity)
        self.target = np.zeros(capacity)

    def add(self, rng: np.random.Generator, idx: np.ndarray, *, initial: bool) -> None:
        """Initialise new customers; the initial base starts with some customers mid-decline."""
        n = len(idx)
        self.adoption[idx] = rng.beta(*cat.ADOPTION_BETA, size=n)
        self.base[idx] = rng.normal(0.0, cat.ENGAGEMENT_BASE_SD, size=n)
        stationary_sd = cat.ENGAGEMENT_NOISE_SD / np.sqrt(1.0 - cat.ENGAGEMENT_AR**2)
        self.noise[idx] = rng.normal(0.0, stationary_sd, size=n)
        declining = rng.random(n) < (cat.INITIAL_DECLINING_SHARE if initial else 0.0)
        depth = rng.uniform(*cat.DECLINE_DEPTH, size=n)
        self.target[idx] = np.where(declining, -depth, 0.0)
        self.shift[idx] = self.target[idx]

    def step(self, rng: np.random.Generator, born: int) -> None:
        """Advance one day for customers ``0..born-1`` (fixed draw count keeps streams aligned)."""
        live = slice(0, born)
        self.noise[live] = cat.ENGAGEMENT_AR * self.noise[live] + rng.normal(
            0.0, cat.ENGAGEMENT_NOISE_SD, size=born
        )
        switch = rng.random(born)
        target = self.target[live]  # a view: the edits below apply in place
        healthy = target == 0.0
        starts = np.flatnonzero(healthy & (switch < cat.DECLINE_START_PROB))
        recovers = ~healthy & (switch < cat.DECLINE_RECOVER_PROB)
        target[recovers] = 0.0
        target[starts] = -rng.uniform(*cat.DECLINE_DEPTH, size=len(starts))
        self.shift[live] += cat.DECLINE_SPEED * (self.target[live] - self.shift[live])

    def deviation(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Engagement relative to the customer's own long-run level (negative = disengaging).

        For customers ``idx``, or for every customer slot when ``idx`` is None.
        """
        if idx is None:
            return self.shift + self.noise
        return self.shift[idx] + self.noise[idx]

    def level(self, idx: np.ndarray) -> np.ndarray:
        """Log engagement."""
        return self.base[idx] + self.deviation(idx)

    def daily_usage(
        self,
        rng: np.random.Generator,
        idx: np.ndarray,
        seats: np.ndarray,
        features_available: np.ndarray,
        day: Day,
        usage_multiplier: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Active users and features used today for customers ``idx`` (0 features if no user).

        ``usage_multiplier`` (usage drift) scales the activity share; feature breadth depends on
        engagement only, so a usage shift leaves ``features_used`` unchanged.
        """
        level = self.level(idx)
        share = self.adoption[idx] * np.exp(level) * cat.WEEKDAY_ACTIVITY[day.weekday]
        # The drift applies after the cap so that expected active users scale by exactly it.
        share = np.minimum(np.minimum(share, cat.MAX_ACTIVE_SHARE) * usage_multiplier, 1.0)
        users = rng.binomial(seats, share)
        # Teams that roll the product out widely also use more of it.
        breadth = (
            cat.FEATURE_BREADTH
            * (self.adoption[idx] / ADOPTION_MEAN)
            * np.exp(cat.FEATURE_ENGAGEMENT_EFFECT * level + 0.15 * _log_noise(rng, len(idx)))
        )
        features = np.clip(np.round(features_available * breadth), 1, features_available)
        return users, np.where(users > 0, features, 0)

    def usage_frame(
        self,
        rng: np.random.Generator,
        day: Day,
        idx: np.ndarray,
        active_users: np.ndarray,
        features_used: np.ndarray,
    ) -> pl.DataFrame:
        """The day's ``usage`` rows: one per customer in ``idx`` with at least one active user.

        Sessions, events and minutes scale with active users (hence with a usage drift) and with
        engagement, with multiplicative noise.
        """
        keep = active_users > 0
        idx, users, features = idx[keep], active_users[keep], features_used[keep]
        level = self.level(idx)
        noise = _log_noise(rng, (3, len(idx)))
        intensity = users * cat.SESSIONS_PER_USER * np.exp(0.25 * level + 0.25 * noise[0])
        sessions = np.maximum(np.round(intensity), users)  # every active user had a session
        events = np.round(sessions * cat.EVENTS_PER_SESSION * np.exp(0.2 * level + 0.3 * noise[1]))
        minutes = sessions * cat.MINUTES_PER_SESSION * np.exp(0.35 * noise[2])
        return source_frame(
            "usage",
            {
                "customer": idx,
                "active_users": users,
                "sessions": sessions,
                "events": events,
                "minutes": np.round(minutes, 2),
                "features_used": features,
            },
            {
                "customer_id": customer_id("customer", len(self.base)),
                "usage_date": pl.lit(day.date),
                "active_users": pl.col("active_users"),
                "sessions": pl.col("sessions"),
                "events": pl.col("events"),
                "minutes": pl.col("minutes"),
                "features_used": pl.col("features_used"),
            },
        )


def _log_noise(rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
    """Standard logistic noise scaled to unit variance (cheap: one uniform per value)."""
    u = np.clip(rng.random(shape), 1e-12, 1.0 - 1e-12)
    return np.log(u / (1.0 - u)) * (np.sqrt(3.0) / np.pi)

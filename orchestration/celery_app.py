"""The Celery application of the scale profile's workers (``celery -A orchestration.celery_app``).

The tasks are dagster-celery's own (``execute_plan`` runs one step of a run); the broker and
result backend come from the profile (``SCOREHOUSE_CELERY_BROKER``, ``SCOREHOUSE_CELERY_BACKEND``,
derived from ``SCOREHOUSE_REDIS_URL``), as the executor of the code location uses them.
"""

from __future__ import annotations

import os

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from orchestration.profiles import activate

activate()

app = make_app(
    {
        "broker": os.environ["SCOREHOUSE_CELERY_BROKER"],
        "backend": os.environ["SCOREHOUSE_CELERY_BACKEND"],
    }
)
execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)

"""The scoring service for apps (``scorehouse serve``; ``docs/serving.md``).

| module | what |
| --- | --- |
| ``app`` | the FastAPI app: routes, JSON errors, request ids, the per-request deadline |
| ``service`` | per use case its models, online lookups and audit table; lookups and scoring |
| ``holder`` | the models served (champion, canary, shadow), swapped whole on promotion |
| ``online`` | reads from Feast's online store (feature service, prediction view) |
| ``payload`` | request shapes and feature payloads checked against the input contract |
| ``audit`` | the fsynced write-ahead spool and its one idempotent committer to Delta |
| ``metrics`` | Prometheus metrics, across worker processes |
| ``settings``, ``server`` | the settings; the supervisor: runs the workers, commits the spools |

It imports Dagster nowhere: the service runs without the orchestration's definitions.
"""

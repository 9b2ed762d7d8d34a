"""The web dashboard, JSON API and Prometheus metrics over QueueService.

Imported only by `queuectl dashboard`: its dependencies (FastAPI, uvicorn, Jinja2,
prometheus_client) are the optional `dashboard` extra.
"""

from __future__ import annotations

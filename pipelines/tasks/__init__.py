"""Celery tasks, one module per queue. Each task loads by id and calls a service; policy lives in celery_app."""

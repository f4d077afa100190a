"""The Celery worker: trains queued runs with mlpcore and reports through runstore."""

"""The HTTP API: validates specs, stores records, queues Celery tasks, streams progress."""

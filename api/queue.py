"""Sending training tasks to the workers: the queue lives in worker.dispatch (torch-free), so
the worker queues a staged sweep's next stage exactly as the API queues a submission."""

from worker.dispatch import TaskQueue

__all__ = ["TaskQueue"]

"""The Celery app's configuration and task registration (no broker needed)."""

from lab.queue import TRAIN_GROUP, create_celery


def test_config_is_safe_for_long_training_tasks():
    app = create_celery("redis://127.0.0.1:6379/15", visibility_timeout_s=7200)
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1 and conf.task_ignore_result
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.broker_transport_options["visibility_timeout"] == 7200


def test_the_task_is_registered_under_its_name():
    import worker.tasks
    from worker.celery_app import app

    assert worker.tasks.train_group_task.name == TRAIN_GROUP
    assert app.tasks[TRAIN_GROUP].acks_late


def test_visibility_timeout_outlasts_the_longest_allowed_run():
    from api.settings import ApiSettings
    from worker.settings import WorkerSettings

    assert WorkerSettings().visibility_timeout_s == ApiSettings().visibility_timeout_s >= 3600

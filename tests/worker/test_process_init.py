"""A worker process sets torch up once at start-up (celery's worker_process_init)."""

from tests.support.paths import python_stdout


def test_worker_process_init_flushes_denormals_and_applies_the_thread_count():
    # a fresh process: what the solo pool (and a prefork child) does as the worker starts
    code = (
        "import torch, worker.celery_app; from celery.signals import worker_process_init;"
        "assert torch.tensor([1e-40]).mul(1.0).item() > 0;"
        "worker_process_init.send(sender=None);"
        "print(torch.tensor([1e-40]).mul(1.0).item(), torch.get_num_threads())"
    )
    assert python_stdout(code, MLPLAB_TORCH_THREADS="1").split() == ["0.0", "1"]

"""What the tests share besides fixtures (those live in the conftest.py files).

- paths: ROOT (the checkout) and python_stdout (fresh Python run from it)
- redis_db: the test Redis URLs, TEST_PREFIX, connect, prefix_keys, pings
- servers: free_port, ServerProcesses (`mlplab.serve` subprocesses), PrivateRedis
- waiting: wait_for (poll with a hang bound) and wait_for_run (a run over HTTP)
- http: starlette_test_client, bearer, parse_sse, sse, queued_task_messages, queued_groups
- training: worker_settings (WorkerSettings for the unit-test DB), StopAfter (a Callback)
- runs: metrics (one epoch's numbers, as a worker reports them)
- cli: the CLI tests' spec files and error_line

Test modules import from here, never from a conftest.py or another test module
(tests/test_test_layout.py checks).
"""

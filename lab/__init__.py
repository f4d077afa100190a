"""lab: what runs and sweeps do over time, for the API and the worker alike; torch-free.

submit.py   check limits, admit under quotas, record, plan fused groups, dispatch
idempotency.py  an Idempotency-Key's first submission, answered again to a retry
budget.py   what a submission costs against max_param_epochs (parameters x epochs)
capability.py  whether the live workers have a submission's datasets and devices
cancel.py   cancel a run or a sweep (moving a staged sweep on when that ends a stage)
stages.py   staged sweeps: the stage record, each next stage planned from the winners
learned.py  learned sweeps (tpe, gp, cmaes, qmc): batches as field-less stages, each asked
            from studies.py's Optuna study rebuilt from the sweep's runs
importance.py  any sweep's parameter importance (PED-ANOVA) and parallel-coordinates data
ranking.py  leaderboards (by run or by configuration), the best run or configuration
configs.py  the one metric function; runs grouped by configuration: mean, std, n
verdict.py  does the best configuration beat the runner-up beyond seed noise
views.py    a sweep as its owner sees it: counts, best, warnings, verdict, stages
repair.py   runs whose worker vanished (leases), strays of a submission cut in half
fusion.py   which runs train as one stacked model, and the names of their groups
fairshare.py  a token task's side of fair share: take the group the scheduler picks
queue.py    the Celery task names, the app factory, the handle that sends tasks
"""

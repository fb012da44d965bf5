"""The chaos scenarios: faults injected once per run into a live sale, each followed by
the checks of I1-I5 (docs/architecture.md) in chaos/checks.py.

The faults are those docs/reliability.md lists: the lock holder paused past its lease
(the incident told in docs/architecture.md), Redis and its clients, Celery workers and
schedulers, the database, racing requests, a skewed clock. One module per family:

- chaos/scenarios/harness.py: what every scenario shares (RunResult, ChaosContext,
  Recorder, a sale of its own, settling, the checks at the end);
- chaos/scenarios/processes.py: web workers paused or killed;
- chaos/scenarios/redis_faults.py: Redis restarted empty or paused;
- chaos/scenarios/tasks.py: Celery workers killed, tasks delivered twice, two beats;
- chaos/scenarios/database.py: a lock wait in MariaDB;
- chaos/scenarios/races.py: payment against expiry, duplicate clicks;
- chaos/scenarios/clock.py: a web server with a skewed clock.

SCENARIOS below is the registry chaos/run.py, chaos/report.py and chaos/tests/ use; its
order is the order of docs/reliability.md.
"""

from chaos.scenarios.clock import clock_skew, faketime_env
from chaos.scenarios.database import db_lock_wait
from chaos.scenarios.harness import (
    ChaosContext,
    Recorder,
    RunResult,
    finish,
    kill,
    later,
    mop_up,
    new_sale,
    purchase_path,
    sale_under_fault,
    settle,
)
from chaos.scenarios.processes import crash_between_steps, pause_past_ttl, web_worker_killed
from chaos.scenarios.races import click_storm, pay_vs_expiry
from chaos.scenarios.redis_faults import redis_paused, redis_restart_empty
from chaos.scenarios.tasks import celery_app_for, task_delivered_twice, two_beats, worker_killed

# name -> (function, fast: also part of `make test`)
SCENARIOS = {
    "pause_past_ttl": (pause_past_ttl, True),
    "redis_restart_empty": (redis_restart_empty, True),
    "redis_paused": (redis_paused, False),
    "worker_killed": (worker_killed, False),
    "task_delivered_twice": (task_delivered_twice, False),
    "crash_between_steps": (crash_between_steps, False),
    "db_lock_wait": (db_lock_wait, True),
    "pay_vs_expiry": (pay_vs_expiry, False),
    "two_beats": (two_beats, False),
    "click_storm": (click_storm, True),
    "web_worker_killed": (web_worker_killed, True),
    "clock_skew": (clock_skew, True),
}

__all__ = [
    "SCENARIOS",
    "ChaosContext",
    "Recorder",
    "RunResult",
    "celery_app_for",
    "clock_skew",
    "crash_between_steps",
    "db_lock_wait",
    "faketime_env",
    "finish",
    "kill",
    "later",
    "mop_up",
    "new_sale",
    "pause_past_ttl",
    "pay_vs_expiry",
    "purchase_path",
    "redis_paused",
    "redis_restart_empty",
    "sale_under_fault",
    "settle",
    "task_delivered_twice",
    "two_beats",
    "web_worker_killed",
    "worker_killed",
]

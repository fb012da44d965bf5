"""The chaos scenarios: faults injected once per run into a live sale, each followed by
the checks of I1-I5 (docs/architecture.md) and of lost acknowledgements in chaos/checks.py.

The faults are those docs/reliability.md lists: the order writers (killed, killed
mid-batch, frozen past the claim timeout as the incident's lock holder was, claiming
each other's entries), Redis (restarted empty, killed, restarted from its AOF, paused),
the web processes, the database, racing requests, schedulers, a skewed clock. One
module per family:

- chaos/scenarios/harness.py: what every scenario shares (RunResult, ChaosContext,
  Recorder, a sale of its own, settling, mopping up, the checks at the end);
- chaos/scenarios/writers.py: order writers killed, frozen or racing;
- chaos/scenarios/processes.py: web workers killed in either acknowledgement level;
- chaos/scenarios/redis_faults.py: Redis restarted empty, killed, restarted from AOF, paused;
- chaos/scenarios/tasks.py: two beats;
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
    kill_writer,
    later,
    mop_up,
    new_sale,
    purchase_path,
    sale_under_fault,
    settle,
)
from chaos.scenarios.processes import crash_between_steps, web_worker_killed
from chaos.scenarios.races import click_storm, pay_vs_expiry
from chaos.scenarios.redis_faults import redis_killed_committed, redis_paused, redis_restart_aof, redis_restart_empty
from chaos.scenarios.tasks import two_beats
from chaos.scenarios.writers import (
    intent_written_twice,
    writer_killed,
    writer_killed_mid_batch,
    writer_paused_past_claim,
)

# name -> (function, fast: also part of `make test`)
SCENARIOS = {
    "writer_paused_past_claim": (writer_paused_past_claim, True),
    "writer_killed": (writer_killed, False),
    "writer_killed_mid_batch": (writer_killed_mid_batch, False),
    "intent_written_twice": (intent_written_twice, False),
    "redis_restart_empty": (redis_restart_empty, True),
    "redis_killed_committed": (redis_killed_committed, False),
    "redis_restart_aof": (redis_restart_aof, False),
    "redis_paused": (redis_paused, False),
    "crash_between_steps": (crash_between_steps, False),
    "web_worker_killed": (web_worker_killed, True),
    "db_lock_wait": (db_lock_wait, False),
    "pay_vs_expiry": (pay_vs_expiry, False),
    "two_beats": (two_beats, False),
    "click_storm": (click_storm, True),
    "clock_skew": (clock_skew, True),
}

__all__ = [
    "SCENARIOS",
    "ChaosContext",
    "Recorder",
    "RunResult",
    "click_storm",
    "clock_skew",
    "crash_between_steps",
    "db_lock_wait",
    "faketime_env",
    "finish",
    "intent_written_twice",
    "kill",
    "kill_writer",
    "later",
    "mop_up",
    "new_sale",
    "pay_vs_expiry",
    "purchase_path",
    "redis_killed_committed",
    "redis_paused",
    "redis_restart_aof",
    "redis_restart_empty",
    "sale_under_fault",
    "settle",
    "two_beats",
    "web_worker_killed",
    "writer_killed",
    "writer_killed_mid_batch",
    "writer_paused_past_claim",
]

"""What every chaos scenario shares: the run result, the context, the answer recorder and
the steps of a run (a sale of its own, a fault at a random moment, settling, mopping up,
the checks of chaos/checks.py).

A scenario function gets a ChaosContext and a seeded random generator and returns a
RunResult. It starts the processes it needs, runs buyers, injects its fault at a random
moment, lets the system settle (the same repairs production runs: the stranded-unit
sweep, the ticket re-drive, `reconcile --fix`), sells what is left to fresh buyers and
then checks I1-I5 (docs/architecture.md) from the database and Redis (chaos/checks.py).
The scenarios themselves are in the other modules of chaos/scenarios/, one per family
of faults; chaos/scenarios/__init__.py lists them.
"""

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from chaos.checks import live_units, sale_violations
from chaos.driver import buyers_loop
from chaos.stack import ChaosStack
from seckill import services, stock
from seckill.models import SeckillActivity, SeckillTicket
from shop.models import Product


@dataclass
class RunResult:
    faults: int = 0
    requests: int = 0
    orders: int = 0
    violations: list = field(default_factory=list)
    settle_s: float = 0.0
    notes: list = field(default_factory=list)


@dataclass
class ChaosContext:
    database_url: str
    redis_port: int
    workdir: str
    customers: list  # [(user_id, token)]

    def stack(self, name, **kwargs):
        return ChaosStack(f"{self.workdir}/{name}", self.database_url, self.redis_port, **kwargs)


class Recorder:
    """Thread-safe log of every answer the buyers got."""

    def __init__(self):
        self.answers = []
        self.lock = threading.Lock()
        self.sold_out = threading.Event()

    def __call__(self, token, answer):
        with self.lock:
            self.answers.append(answer)
        if answer.code == "sold_out":
            self.sold_out.set()

    def count(self, predicate):
        with self.lock:
            return sum(1 for a in self.answers if predicate(a))

    @property
    def server_errors(self):
        return self.count(lambda a: a.status >= 500 and a.status != 503)


_sale_counter = iter(range(10**9))


def new_sale(*, units, limit=1, starts_in=-5, duration=3600, warm=True):
    """A product and a live sale of its own, published and loaded into Redis."""
    n = next(_sale_counter)
    stamp = f"{int(time.time() * 1000)}-{n}"
    product = Product.objects.create(name=f"Chaos item {stamp}", slug=f"chaos-{stamp}", price=100, stock=units)
    now = timezone.now()
    activity = SeckillActivity.objects.create(
        product=product,
        title=f"Chaos sale {stamp}",
        price=50,
        stock_total=units,
        per_user_limit=limit,
        starts_at=now + timedelta(seconds=starts_in),
        ends_at=now + timedelta(seconds=starts_in + duration),
    )
    if warm:
        services.activity_warm(activity_id=activity.pk)
    return activity


def purchase_path(activity):
    return f"/api/seckill/activities/{activity.pk}/purchase/"


def later(rng, low, high, action):
    """Run `action` in a thread after a random delay; returns the thread (join it)."""

    def run():
        time.sleep(rng.uniform(low, high))
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def settle(activity, stack_, *, async_mode=False, timeout=40.0):
    """Let the system reach its resting state with the repairs production runs."""
    started = time.monotonic()
    deadline = started + timeout
    if async_mode:
        while time.monotonic() < deadline:
            pending = list(
                SeckillTicket.objects.filter(activity=activity, status="pending").values_list("pk", flat=True)
            )
            if not pending:
                break
            if time.monotonic() - started > 10:  # the beat job's re-drive, done by hand
                for ticket_id in pending:
                    services.ticket_fulfil(ticket_id=ticket_id)
            time.sleep(0.25)
    services.release_stranded_reservations(activity_id=activity.pk, older_than_s=0)
    services.activity_resync(activity_id=activity.pk)
    return time.monotonic() - started


def mop_up(stack_, activity, customers, recorder):
    """Fresh buyers take whatever is left, so I2 can be checked: every unit sells."""
    left = [t for _, t in customers]
    buyers_loop(
        stack_.web_port,
        left,
        purchase_path(activity),
        until=lambda: live_units(activity.pk) >= activity.stock_total and stock.remaining(activity.pk) == 0,
        on_answer=recorder,
        threads=8,
    )


def finish(result, activity, stack_, ctx, recorder, *, async_mode=False, expect_sell_out=True, mop=True):
    result.settle_s = round(settle(activity, stack_, async_mode=async_mode), 2)
    if mop:
        mop_up(stack_, activity, ctx.customers[len(ctx.customers) // 2 :], recorder)
        settle(activity, stack_, async_mode=async_mode, timeout=20)
    activity.refresh_from_db()
    result.requests = len(recorder.answers)
    result.orders = live_units(activity.pk)
    result.violations += sale_violations(activity.pk, answers=recorder.answers, expect_sell_out=expect_sell_out)
    if recorder.server_errors:
        result.violations.append(f"{recorder.server_errors} answers were 5xx other than 503")
    return result


def sale_under_fault(
    ctx,
    rng,
    name,
    *,
    units,
    buyers,
    fault,
    when=(0.1, 0.5),
    extra=None,
    workers=0,
    async_mode=False,
    tabs=1,
    after=None,
):
    """The common run: a sale, buyers until it sells out, `fault(stack, result)` at a random
    moment within `when` seconds, then `after(stack, result, recorder)`, settle and check."""
    result = RunResult()
    with ctx.stack(name, extra=extra) as s:
        s.start_redis()
        s.start_web()
        for index in range(workers):
            s.start_worker(name=f"worker-{index}")
        activity = new_sale(units=units)
        recorder = Recorder()
        thread = later(rng, *when, lambda: fault(s, result))
        tokens = [t for _, t in ctx.customers[:buyers] for _ in range(tabs)]
        buyers_loop(s.web_port, tokens, purchase_path(activity), until=recorder.sold_out.is_set, on_answer=recorder)
        thread.join()
        if after:
            after(s, result, recorder)
        return finish(result, activity, s, ctx, recorder, async_mode=async_mode)


def kill(pid):
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)

"""What every chaos scenario shares: the run result, the context, the answer recorder and
the steps of a run (a sale of its own, a fault at a random moment, settling, mopping up,
the checks of chaos/checks.py).

A scenario function gets a ChaosContext and a seeded random generator and returns a
RunResult. It starts the processes it needs (gunicorn, one or more order writers), runs
buyers, injects its fault at a random moment, lets the system settle with the repairs
production runs (the writers drain every intent, the stranded-unit sweep, a re-sync),
sells what is left to fresh buyers and then checks I1-I5 (docs/architecture.md) and
lost acknowledgements from the database and Redis (chaos/checks.py). The scenarios
themselves are in the other modules of chaos/scenarios/, one per family of faults;
chaos/scenarios/__init__.py lists them.
"""

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from chaos.checks import drained, live_units, lost_acknowledgements, sale_violations
from chaos.driver import buyers_loop
from chaos.stack import ChaosStack
from seckill import services
from seckill.models import SeckillActivity, SeckillQuota
from shop.models import Product

MOP_UP_ROUNDS = 4


@dataclass
class RunResult:
    faults: int = 0
    requests: int = 0
    orders: int = 0
    lost_acks: int = 0
    violations: list = field(default_factory=list)
    settle_s: float = 0.0
    stuck: bool = False  # the writers never drained: nothing after that is meaningful
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
        self.by_token = []  # [(token, answer)], in the order they came
        self.lock = threading.Lock()
        self.sold_out = threading.Event()

    def __call__(self, token, answer):
        with self.lock:
            self.answers.append(answer)
            self.by_token.append((token, answer))
        if answer.code == "sold_out":
            self.sold_out.set()

    def count(self, predicate):
        with self.lock:
            return sum(1 for a in self.answers if predicate(a))

    @property
    def server_errors(self):
        return self.count(lambda a: a.status >= 500 and a.status != 503)


_sale_counter = iter(range(10**9))


def new_sale(*, units, limit=1, starts_in=-5, duration=3600, warm=True, bucket_count=1):
    """A product and a live sale of its own, published and loaded into Redis.

    Earlier chaos sales are moved out of the writers' window (ended over a day ago), so
    the writers of this run read one sale's stream, not every sale of the chaos database.
    """
    shift = timedelta(days=3)
    window = timezone.now() - timedelta(days=1)  # seckill/stock.py WRITER_AFTER_END
    SeckillActivity.objects.filter(title__startswith="Chaos sale ", ends_at__gte=window).update(
        starts_at=F("starts_at") - shift, ends_at=F("ends_at") - shift
    )
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
        bucket_count=bucket_count,
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


def settle(activity, result, *, timeout=40.0):
    """The resting state, reached with the repairs production runs.

    First the writers drain the sale's stream (XLEN 0): every accepted intent is then an
    order or a recorded refusal, and only then is a reservation without an order truly
    stranded. The sweep then gives those back (the beat job's work, done by hand with no
    grace period: no purchase is in flight) and a re-sync rewrites Redis from the DB
    (`reconcile --fix`); both announce the units on the units-back channel.
    """
    started = time.monotonic()
    if not drained([activity.pk], timeout=timeout):
        result.violations.append(f"the writers did not drain the sale's intents within {timeout:.0f} s")
        result.stuck = True
        return time.monotonic() - started  # a sweep now could give back units whose order is coming
    services.release_stranded_reservations(activity_id=activity.pk, older_than_s=0)
    services.activity_resync(activity_id=activity.pk)
    return time.monotonic() - started


def mop_up(stack_, activity, customers, recorder, result):
    """Fresh buyers take whatever is left, so I2 can be checked: every unit sells.

    Each round offers every customer who holds nothing of the sale one more try (a
    customer answered sold_out earlier may buy a unit that came back), then settles
    again. Rounds follow each other within a few seconds, far inside the chaos stack's
    30 s sold-out flag lifetime (chaos/stack.py), so a unit only sells if the units-back
    message cleared the web processes' flags: a product that misses it undersells here.
    """
    total = activity.stock_total
    for round_ in range(1, MOP_UP_ROUNDS + 1):
        if live_units(activity.pk) >= total or result.stuck:
            return round_ - 1
        holders = set(
            SeckillQuota.objects.filter(activity_id=activity.pk, units_held__gt=0).values_list("user_id", flat=True)
        )
        fresh = [t for user_id, t in customers if user_id not in holders]
        buyers_loop(
            stack_.web_port,
            fresh,
            purchase_path(activity),
            until=lambda: live_units(activity.pk) >= total,
            on_answer=recorder,
            threads=8,
        )
        settle(activity, result, timeout=20)
    return MOP_UP_ROUNDS


def finish(result, activity, stack_, ctx, recorder, *, expect_sell_out=True, mop=True, before_mop=None):
    """Settle, mop up, check. Needs at least one live writer (it drains the stream).

    `before_mop()` runs between the settle and the mop-up (units coming back then must
    reach the web processes by the units-back message alone: no re-sync follows)."""
    if not stack_.live_writers():
        result.violations.append("no order writer alive at the end of the run")
    result.settle_s = round(settle(activity, result), 2)
    if before_mop:
        before_mop()
    if mop:
        rounds = mop_up(stack_, activity, ctx.customers, recorder, result)
        if rounds > 1:
            result.notes.append(f"mop-up took {rounds} rounds")
    activity.refresh_from_db()
    result.requests = len(recorder.answers)
    result.orders = live_units(activity.pk)
    result.lost_acks = len(lost_acknowledgements(recorder.answers))
    result.violations += sale_violations(activity.pk, answers=recorder.answers, expect_sell_out=expect_sell_out)
    if recorder.server_errors:
        result.violations.append(f"{recorder.server_errors} answers were 5xx other than 503")
    dead = [w.consumer for w in stack_.writers if not w.alive() and not getattr(w, "killed", False)]
    if dead:
        result.violations.append(f"order writer(s) exited on their own: {dead}")
    return result


def sale_under_fault(
    ctx, rng, name, *, units, buyers, fault, when=(0.1, 0.5), extra=None, writers=1, tabs=1, after=None, aof=False
):
    """The common run: a sale, `writers` order writers, buyers until it sells out, `fault(stack,
    result)` at a random moment within `when` seconds, then `after(stack, result, recorder)`,
    settle and check."""
    result = RunResult()
    with ctx.stack(name, extra=extra) as s:
        s.start_redis(aof=aof)
        activity = new_sale(units=units)
        s.activity_id = activity.pk
        for _ in range(writers):  # they start up while gunicorn does
            s.start_writer()
        s.start_web()
        s.wait_writers_reading()
        recorder = s.recorder = Recorder()
        thread = later(rng, *when, lambda: fault(s, result))
        tokens = [t for _, t in ctx.customers[:buyers] for _ in range(tabs)]
        buyers_loop(s.web_port, tokens, purchase_path(activity), until=recorder.sold_out.is_set, on_answer=recorder)
        thread.join()
        if after:
            after(s, result, recorder)
        return finish(result, activity, s, ctx, recorder)


def kill(pid):
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_writer(service):
    """SIGKILL an order writer: no batch finished, nothing settled, its entries left pending."""
    service.killed = True
    kill(service.pid)
    service.popen.wait(10)

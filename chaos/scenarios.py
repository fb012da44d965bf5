"""The faults of DESIGN.md §8 and issue 7, each injected once per run into a live sale.

A scenario function gets a ChaosContext and a seeded random generator and returns a
RunResult. It starts the processes it needs, runs buyers, injects its fault at a random
moment, lets the system settle (the same repairs production runs: the stranded-unit
sweep, the ticket re-drive, `reconcile --fix`), sells what is left to fresh buyers and
then checks I1-I5 from the database and Redis (chaos/checks.py).
"""

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import MySQLdb
from django.db import connection
from django.utils import timezone

from bench.stack import children_of
from chaos.checks import live_units, sale_violations
from chaos.driver import Client, buyers_loop, together
from chaos.stack import ChaosStack
from core.errors import ShopError
from orders import services as order_services
from orders.models import Order
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


# --- 1. Lock holder paused past its TTL -------------------------------------------------------


def pause_past_ttl(ctx, rng):
    """A web worker is frozen (SIGSTOP) mid-purchase for the customer lock's lease plus 1 s,
    while the same customers keep buying from three tabs each: a newer holder takes the
    lock, and the frozen one's late write is fenced or refused by the DB."""

    def fault(s, result):
        s.pause(rng.choice(s.web_worker_pids()), float(s.env["SECKILL_CUSTOMER_LOCK_TTL"]) + 1.0)
        result.faults += 1

    return sale_under_fault(ctx, rng, "pause-past-ttl", units=30, buyers=90, tabs=3, fault=fault, when=(0.05, 0.4))


# --- 2. Redis restarted empty mid-sale -----------------------------------------------------------


def redis_restart_empty(ctx, rng):
    """Redis loses everything mid-sale (SHUTDOWN NOSAVE, started again empty): purchases
    answer 503 for a moment, the first one after the restart warms the sale up again from
    the database, and nothing oversells."""

    def fault(s, result):
        s.restart_redis_empty()
        result.faults += 1

    def after(s, result, recorder):
        result.notes.append(f"{recorder.count(lambda a: a.status == 503)} answers were 503 unavailable")

    return sale_under_fault(ctx, rng, "redis-restart", units=60, buyers=200, fault=fault, when=(0.1, 0.6), after=after)


# --- 3. Redis paused for 5 s -----------------------------------------------------------------------


def redis_paused(ctx, rng):
    """Bounded client timeouts: answers keep coming (503 while Redis is away), no 500 storm."""
    result = RunResult()
    with ctx.stack("redis-paused") as s:
        s.start_redis()
        s.start_web()
        activity = new_sale(units=80)
        recorder = Recorder()
        durations = []

        def fault():
            s.pause(s.redis, 5.0)
            result.faults += 1

        thread = later(rng, 0.1, 0.3, fault)

        def hammer(client):
            end = time.monotonic() + 7
            while time.monotonic() < end and not recorder.sold_out.is_set():
                started = time.monotonic()
                answer = client.request("POST", purchase_path(activity), body={"quantity": 1})
                durations.append(time.monotonic() - started)
                recorder(client.token, answer)
                if answer.status in (201, 409):
                    return
                time.sleep(0.05)

        clients = [Client(s.web_port, t, timeout=20) for _, t in ctx.customers[:40]]
        together([lambda c=c: hammer(c) for c in clients])
        thread.join()
        worst = max(durations, default=0)
        result.notes.append(f"slowest answer {worst:.1f} s; {recorder.count(lambda a: a.status == 503)} x 503")
        if worst > 8:
            result.violations.append(f"an answer took {worst:.1f} s while Redis was paused (bound: 8 s)")
        return finish(result, activity, s, ctx, recorder)


# --- 4. Celery worker SIGKILLed mid-task (async mode) ---------------------------------------------


def worker_killed(ctx, rng):
    """Every 202 still gets its order exactly once: acks_late + reject_on_worker_lost requeue the
    task of a killed pool process; a worker killed outright leaves its messages to be
    redelivered after the visibility timeout, or re-driven from the pending tickets."""
    whole = rng.random() < 0.5

    def fault(s, result):
        worker = s.workers[0]
        for pid in ([worker.pid] if whole else []) + children_of(worker.pid):
            kill(pid)
        result.faults += 1

    def after(s, result, recorder):
        if whole:
            s.start_worker(name="worker-replacement")
        result.notes.append("killed the whole worker" if whole else "killed the pool processes")

    return sale_under_fault(
        ctx, rng, "worker-killed", units=60, buyers=150, fault=fault, extra={"SECKILL_ORDER_MODE": "async"},
        workers=1, async_mode=True, after=after,
    )  # fmt: skip


# --- 5. A task delivered twice --------------------------------------------------------------------


def task_delivered_twice(ctx, rng):
    """Each ticket's task is sent three times, to two workers; one order per ticket."""
    result = RunResult()
    with ctx.stack("task-twice", extra={"SECKILL_ORDER_MODE": "async"}) as s:
        s.start_redis()
        s.start_web()
        s.start_worker(name="worker-a")
        s.start_worker(name="worker-b")
        activity = new_sale(units=50)
        recorder = Recorder()
        buyers_loop(
            s.web_port,
            [t for _, t in ctx.customers[:120]],
            purchase_path(activity),
            until=recorder.sold_out.is_set,
            on_answer=recorder,
        )
        app = celery_app_for(s)
        for answer in recorder.answers:
            if answer.status == 202:
                ticket = answer.body["ticket"].partition("-")[2]
                for _ in range(2):
                    app.send_task("seckill.tasks.fulfil_ticket", args=[ticket])
                    result.faults += 1
        return finish(result, activity, s, ctx, recorder, async_mode=True)


def celery_app_for(stack_):
    from celery import Celery

    app = Celery("chaos", broker=stack_.env["CELERY_BROKER_URL"])
    app.conf.broker_transport_options = {"visibility_timeout": 8}
    return app


# --- 6. Crash between DB commit and enqueue / between Lua reservation and DB write -----------------


def crash_between_steps(ctx, rng):
    """Web processes SIGKILLed at random moments while async purchases run: a kill after the
    ticket commit loses the Celery message (the re-drive sends it again), a kill after the
    Lua reservation strands a unit (the stranded sweep gives it back)."""
    result = RunResult()
    with ctx.stack("crash-between-steps", extra={"SECKILL_ORDER_MODE": "async"}) as s:
        s.start_redis()
        s.start_web()
        s.start_worker()
        activity = new_sale(units=60)
        recorder = Recorder()
        stop = threading.Event()

        def killer():
            while not stop.is_set() and result.faults < 6:
                time.sleep(rng.uniform(0.05, 0.25))
                pids = s.web_worker_pids()
                if pids:
                    kill(rng.choice(pids))
                    result.faults += 1

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        buyers_loop(
            s.web_port,
            [t for _, t in ctx.customers[:200]],
            purchase_path(activity),
            until=recorder.sold_out.is_set,
            on_answer=recorder,
        )
        stop.set()
        thread.join()
        cut = recorder.count(lambda a: a.status == 0 or a.resent)
        result.notes.append(f"{cut} requests were cut off by a kill (and sent again by the buyer)")
        return finish(result, activity, s, ctx, recorder, async_mode=True)


# --- 7. Lock-wait timeout in MariaDB on the order write ---------------------------------------------


def db_lock_wait(ctx, rng):
    """Another connection holds the sale row for 7 s while the lock wait timeout is 2 s:
    the order transaction is retried 3 times (6 s), then answered 429 busy with its
    reservation given back; never a 500, and those units sell afterwards."""
    params = connection.get_connection_params()

    def fault(s, result):
        conn = MySQLdb.connect(
            host=params.get("host", "127.0.0.1"), user=params.get("user", "root"),
            passwd=params.get("passwd", ""), db=params["database"], port=params.get("port", 3306),
        )  # fmt: skip
        try:
            cursor = conn.cursor()
            cursor.execute("BEGIN")
            cursor.execute("SELECT id FROM seckill_seckillactivity WHERE title LIKE 'Chaos sale %%' "
                           "ORDER BY id DESC LIMIT 1 FOR UPDATE")  # fmt: skip
            result.faults += 1
            time.sleep(7.0)
            conn.rollback()
        finally:
            conn.close()

    def after(s, result, recorder):
        busy = recorder.count(lambda a: a.code == "busy")
        result.notes.append(f"{busy} answers were 429 busy")
        if not busy:
            result.violations.append("no purchase ran out of lock-wait retries: the fault did not bite")

    return sale_under_fault(ctx, rng, "db-lock-wait", units=40, buyers=100, fault=fault, when=(0.0, 0.1), after=after)


# --- 8. Payment racing expiry, 200 times ---------------------------------------------------------


def pay_vs_expiry(ctx, rng, races=200):
    """Each order is paid over HTTP at the instant the expiry runs for it: one outcome each
    time (paid or expired, never both, never neither), and the units of the expired
    ones come back exactly once."""
    result = RunResult()
    with ctx.stack("pay-vs-expiry") as s:
        s.start_redis()
        s.start_web()
        activity = new_sale(units=races)
        recorder = Recorder()
        customers = ctx.customers[:races]
        clients = {t: Client(s.web_port, t) for _, t in customers}
        buyers_loop(s.web_port, [t for _, t in customers], purchase_path(activity), until=lambda: False,
                    on_answer=recorder)  # fmt: skip
        orders = {a.body["order"]["number"]: a for a in recorder.answers if a.status == 201}
        tokens = dict(customers)
        by_number = dict(Order.objects.filter(number__in=orders).values_list("number", "user_id"))
        for number, user_id in by_number.items():
            client = clients[tokens[user_id]]
            # The payment arrives before the deadline and the expiry runs as of the deadline:
            # both are valid on their own, and only the version check decides.
            deadline = timezone.now() + timedelta(milliseconds=500)
            Order.objects.filter(number=number).update(expires_at=deadline)
            order = Order.objects.get(number=number)

            def pay(client=client, number=number):
                return client.request("POST", f"/api/orders/{number}/pay/")

            head_start = rng.uniform(0, 0.015)

            def expire(order=order, deadline=deadline, head_start=head_start):
                time.sleep(head_start)  # the HTTP payment takes a few ms to arrive; vary who is first
                try:
                    return order_services.order_expire(order=order, now=deadline + timedelta(milliseconds=1))
                except ShopError as exc:
                    return exc

            together([pay, expire])
            result.faults += 1
        statuses = dict(Order.objects.filter(number__in=orders).values_list("number", "status"))
        both = [n for n, st in statuses.items() if st not in ("paid", "expired")]
        if both:
            result.violations.append(f"orders neither paid nor expired: {both[:3]}")
        paid = sum(1 for st in statuses.values() if st == "paid")
        result.notes.append(f"{paid} paid, {len(statuses) - paid} expired")
        if not 0 < paid < len(statuses):
            result.violations.append(f"not a race: {paid} of {len(statuses)} paid")
        services.activity_resync(activity_id=activity.pk)
        return finish(result, activity, s, ctx, recorder, expect_sell_out=False, mop=False)


# --- 9. Two beat schedulers ----------------------------------------------------------------------


def two_beats(ctx, rng):
    """Two beat processes fire every job twice: each overdue order expires once (its units come
    back once) and each reconciliation tick produces one run."""
    from reconciliation.models import ReconciliationRun

    result = RunResult()
    overrides = {"BEAT_INTERVAL_OVERRIDES": "orders-expire-overdue=1,seckill-reconcile-nightly=2"}
    with ctx.stack("two-beats", extra=overrides) as s:
        s.start_redis()
        s.start_web()
        s.start_worker(concurrency=4)
        activity = new_sale(units=40)
        recorder = Recorder()
        buyers_loop(s.web_port, [t for _, t in ctx.customers[:40]], purchase_path(activity), until=lambda: False,
                    on_answer=recorder)  # fmt: skip
        Order.objects.filter(seckill__activity=activity).update(expires_at=timezone.now() - timedelta(seconds=1))
        runs_before = ReconciliationRun.objects.count()
        s.start_beat("beat-a")
        s.start_beat("beat-b")
        result.faults += 2
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and live_units(activity.pk):
            time.sleep(0.25)
        time.sleep(4)  # a few reconciliation ticks from both schedulers
        ticks = ReconciliationRun.objects.count() - runs_before
        overlapping = ReconciliationRun.overlapping_pairs() if hasattr(ReconciliationRun, "overlapping_pairs") else 0
        result.notes.append(f"{ticks} reconciliation runs in ~4 s from two schedulers")
        if overlapping:
            result.violations.append(f"{overlapping} reconciliation runs overlapped in time")
        expired = Order.objects.filter(seckill__activity=activity, status="expired").count()
        if expired != 40:
            result.violations.append(f"{expired} of 40 overdue orders expired")
        return finish(result, activity, s, ctx, recorder, expect_sell_out=False, mop=False)


# --- 10. Duplicate-click storm --------------------------------------------------------------------


def click_storm(ctx, rng):
    """One customer, 50 parallel requests from 5 tabs (5 idempotency keys): one order."""
    result = RunResult()
    with ctx.stack("click-storm") as s:
        s.start_redis()
        s.start_web()
        activity = new_sale(units=10)
        recorder = Recorder()
        _, token = ctx.customers[rng.randrange(len(ctx.customers))]
        keys = [f"tab-{rng.randrange(10**9)}" for _ in range(5)]

        def click(i):
            answer = Client(s.web_port, token).request(
                "POST", purchase_path(activity), body={"quantity": 1}, headers={"Idempotency-Key": keys[i % 5]}
            )
            recorder(token, answer)
            return answer

        answers = together([lambda i=i: click(i) for i in range(50)])
        result.faults = 50
        numbers = {a.body["order"]["number"] for a in answers if a.status == 201}
        if len(numbers) != 1:
            result.violations.append(f"the storm produced {len(numbers)} distinct orders")
        odd = [a.status for a in answers if a.status not in (201, 409, 429)]
        if odd:
            result.violations.append(f"unexpected answers: {odd[:5]}")
        result.notes.append(f"answers: {sorted({a.status for a in answers})}")
        return finish(result, activity, s, ctx, recorder, expect_sell_out=False, mop=False)


# --- 11. gunicorn worker SIGKILLed mid-request ---------------------------------------------------


def web_worker_killed(ctx, rng):
    """Web workers killed mid-request (sync mode): a reservation whose order was never
    written is given back by the stranded sweep, so every unit still sells."""

    def fault(s, result):
        for _ in range(3):
            pids = s.web_worker_pids()
            if pids:
                kill(rng.choice(pids))
                result.faults += 1
            time.sleep(rng.uniform(0.02, 0.15))

    return sale_under_fault(ctx, rng, "web-killed", units=50, buyers=160, fault=fault, when=(0.05, 0.3))


# --- 12. Clock skew on one worker ------------------------------------------------------------------


def clock_skew(ctx, rng):
    """A web server whose clock runs two hours ahead (libfaketime) cannot open the sale early:
    the window is checked against Redis's clock. Nothing oversells."""
    result = RunResult()
    with ctx.stack("clock-skew", web_workers=2) as s:
        s.start_redis()
        s.start_web()
        skewed_port = s.web_port + 1
        s.start_web(env=faketime_env("+2h"), port=skewed_port, name="web-skewed", worker_timeout=0)
        result.faults += 1
        activity = new_sale(units=30, starts_in=4)
        recorder = Recorder()
        early = together(
            [
                lambda t=t: Client(skewed_port, t).request("POST", purchase_path(activity), body={"quantity": 1})
                for _, t in ctx.customers[:30]
            ]
        )
        opened_early = [a for a in early if a.status in (201, 202)]
        if opened_early:
            result.violations.append(f"the skewed server sold {len(opened_early)} units before the start")
        if any(a.code != "not_started" for a in early if not isinstance(a, BaseException)):
            result.violations.append(f"before the start the skewed server should answer not_started: {early[:2]}")
        result.notes.append(f"before the start the skewed server answered {sorted({a.code for a in early})}")
        while timezone.now() < activity.starts_at:
            time.sleep(0.1)
        tokens = [t for _, t in ctx.customers[30:150]]
        halves = [(s.web_port, tokens[0::2]), (skewed_port, tokens[1::2])]
        together(
            [
                lambda port=port, share=share: buyers_loop(
                    port, share, purchase_path(activity), until=recorder.sold_out.is_set, on_answer=recorder, threads=6
                )
                for port, share in halves
            ]
        )
        return finish(result, activity, s, ctx, recorder)


def faketime_env(offset):
    candidates = [f"/usr/lib/{arch}-linux-gnu/faketime/libfaketime.so.1" for arch in ("x86_64", "aarch64")]
    library = next((p for p in candidates if os.path.exists(p)), None)
    if library is None:
        raise RuntimeError("libfaketime is not installed (apt-get install faketime)")
    # The monotonic clock is shifted too: Python's time.sleep() waits on an absolute
    # CLOCK_MONOTONIC deadline, which libfaketime rejects (EINVAL) when only one side is faked.
    return {"LD_PRELOAD": library, "FAKETIME": offset}


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

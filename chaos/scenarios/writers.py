"""Faults of the order writers (seckill/writer.py, `manage.py seckill_writer`): killed at
any moment, killed while it holds entries it read and has not settled, frozen past the
claim timeout while another writer takes its entries, and writers that claim each
other's entries all the time.

Why an intent is never lost nor written twice is in seckill/writer.py's docstring; these
runs check it with real processes: the stack's writers (chaos/stack.py) claim a dead
writer's entries after SECKILL_WRITER_CLAIM_IDLE_MS (1.5 s in the chaos stack).
"""

import contextlib
import os
import signal
import threading
import time

import redis

from chaos.scenarios.harness import kill_writer, sale_under_fault
from seckill import keys
from seckill.models import SeckillOrder

CLAIM_IDLE_S = 1.5


def _held(s, activity_id, consumer):
    """Reservation ids of the entries `consumer` read and has not settled."""
    stream = keys.intents(activity_id)
    client = s.client()
    pending = client.xpending_range(stream, keys.WRITER_GROUP, "-", "+", 1000, consumername=consumer)
    ids = [p["message_id"] for p in pending]
    found = []
    for entry_id in ids:
        for _id, fields in client.xrange(stream, entry_id, entry_id):
            found.append(fields[b"r"].decode())
    return found


def _catch_holding(s, activity_id, victim, others, rng, result, tries=12):
    """Freeze every writer while intents pile up, let `victim` alone read a batch, and SIGSTOP
    it during that batch: at once (before its COMMIT) or after a random few ms (often
    between COMMIT and XACK), as the seeded generator picks. The other writers are frozen
    first, each at a moment it holds nothing, and stay frozen until the catch, so the pile
    is neither drained nor held behind the probe's back. Returns the
    reservation ids `victim` holds, with every writer left stopped (the caller resumes
    them), or [] if it never held any (then everything runs again)."""
    for w in others:
        _freeze_idle(s, activity_id, w)
    os.kill(victim.pid, signal.SIGSTOP)
    for _ in range(tries):
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and _undelivered(s, activity_id) < 20:
            time.sleep(0.01)
        delay = 0.0 if rng.random() < 0.5 else rng.uniform(0, 0.015)
        os.kill(victim.pid, signal.SIGCONT)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and not s.consumers(activity_id).get(victim.consumer):
            pass  # busy poll: the batch may last only a few ms
        time.sleep(delay)
        os.kill(victim.pid, signal.SIGSTOP)
        held = _held(s, activity_id, victim.consumer)
        if held:
            return held
    for w in [victim, *others]:
        os.kill(w.pid, signal.SIGCONT)
    result.violations.append(f"the writer never held unsettled entries in {tries} tries: the fault did not bite")
    return []


def _freeze_idle(s, activity_id, writer, tries=200):
    """SIGSTOP `writer` at a moment it holds no entries, so the pile is left to the victim."""
    for _ in range(tries):
        os.kill(writer.pid, signal.SIGSTOP)
        if not s.consumers(activity_id).get(writer.consumer):
            return
        os.kill(writer.pid, signal.SIGCONT)
        time.sleep(0.005)


def _undelivered(s, activity_id):
    """Entries of the sale's stream no writer has read yet (the group's lag)."""
    for group in s.client().xinfo_groups(keys.intents(activity_id)):
        if group["name"] in (keys.WRITER_GROUP, keys.WRITER_GROUP.encode()):
            return int(group.get("lag") or 0)
    return 0


def _committed(reservation_ids):
    return SeckillOrder.objects.filter(reservation_id__in=reservation_ids).count()


# --- A writer SIGKILLed at a random moment, restarted later (committed mode) ------------------------


def writer_killed(ctx, rng):
    """The only order writer is SIGKILLed at a random moment of the sale (SECKILL_ACK=committed)
    and a new one starts a moment later, as a supervisor would restart it. Requests waiting
    for their COMMIT answer 202 confirming after SECKILL_ACK_WAIT_SECONDS; the new writer
    claims the dead one's unsettled entries after the claim timeout. Every 2xx answer has
    its order."""

    def fault(s, result):
        kill_writer(s.writers[0])
        result.faults += 1
        time.sleep(rng.uniform(0.2, 1.0))
        s.start_writer()

    def after(s, result, recorder):
        result.notes.append(f"{recorder.count(lambda a: a.status == 202)} answers were 202 confirming")

    return sale_under_fault(ctx, rng, "writer-killed", units=60, buyers=150, fault=fault, when=(0.05, 0.4), after=after)


# --- A writer SIGKILLed while it holds entries (reserved mode) ---------------------------------------


def writer_killed_mid_batch(ctx, rng):
    """A writer is SIGKILLed while it holds intents it read and has not settled: before its
    COMMIT (MariaDB rolls the batch back) or between COMMIT and XACK (the orders exist, the
    entries are still pending). The other writer claims them after the claim timeout and
    writes each exactly once: written ones are found and settled again, not rewritten
    (SECKILL_ACK=reserved, so every purchase is acknowledged before its order exists)."""

    def fault(s, result):
        victim, other = s.writers
        held = _catch_holding(s, s.activity_id, victim, [other], rng, result)
        if not held:
            return
        committed = _committed(held)
        kill_writer(victim)
        os.kill(other.pid, signal.SIGCONT)
        result.faults += 1
        result.notes.append(f"killed a writer holding {len(held)} intent(s), {committed} of them already committed")
        s.held = held

    def after(s, result, recorder):
        held = getattr(s, "held", [])
        deadline = time.monotonic() + 20
        while held and time.monotonic() < deadline and _committed(held) < len(held):
            time.sleep(0.1)
        if held and _committed(held) != len(held):
            result.violations.append(f"{len(held) - _committed(held)} intent(s) of the killed writer never written")

    return sale_under_fault(
        ctx, rng, "writer-mid-batch", units=80, buyers=200, fault=fault, when=(0.0, 0.1), writers=2, after=after,
        extra={"SECKILL_ACK": "reserved"},
    )  # fmt: skip


# --- A writer frozen past the claim timeout: the incident, with writers ---------------------------------


def writer_paused_past_claim(ctx, rng):
    """A writer is frozen (SIGSTOP) in the middle of a batch for the claim timeout plus 1 s,
    as the incident's lock holder was (docs/architecture.md): the other writer claims its
    entries and writes them; then the frozen one wakes and finishes its stale batch. Its
    late write must change nothing: no intent written twice, none both written and
    refused (a refusal would give a sold unit back), I1-I5 hold."""

    def fault(s, result):
        victim, other = s.writers
        held = _catch_holding(s, s.activity_id, victim, [other], rng, result)
        if not held:
            return
        committed = _committed(held)
        os.kill(other.pid, signal.SIGCONT)
        time.sleep(CLAIM_IDLE_S + 1.0)
        taken = _committed(held)
        os.kill(victim.pid, signal.SIGCONT)
        result.faults += 1
        result.notes.append(
            f"froze a writer holding {len(held)} intent(s) ({committed} committed); {taken} written when it woke"
        )

    return sale_under_fault(ctx, rng, "writer-paused", units=60, buyers=150, fault=fault, when=(0.0, 0.1), writers=2)


# --- Writers claiming each other's entries all the time ----------------------------------------------------


def intent_written_twice(ctx, rng):
    """Three writers whose claim timeout is 1 ms, all frozen together for 1.5 s mid-sale and
    woken together: each then claims the entries the others hold, so one intent is read
    and written by two or three writers at once. One order per intent, no refusal, and
    every 2xx answer has its order (SECKILL_ACK=reserved)."""
    delivered = set()

    def sample(s, stop):
        client = s.client()
        while not stop.is_set():
            with contextlib.suppress(redis.RedisError):  # the group may not exist yet
                for p in client.xpending_range(keys.intents(s.activity_id), keys.WRITER_GROUP, "-", "+", 1000):
                    if p["times_delivered"] > 1:
                        delivered.add(p["message_id"])
            time.sleep(0.01)

    def fault(s, result):
        stop = threading.Event()
        sampler = threading.Thread(target=sample, args=(s, stop), daemon=True)
        sampler.start()
        for w in s.writers:
            os.kill(w.pid, signal.SIGSTOP)
        time.sleep(1.5)
        for w in s.writers:
            os.kill(w.pid, signal.SIGCONT)
        time.sleep(3.0)
        stop.set()
        sampler.join()
        result.faults += len(delivered)
        result.notes.append(f"{len(delivered)} intent(s) delivered to more than one writer")

    def after(s, result, recorder):
        if not delivered:
            result.violations.append("no intent was delivered twice: the fault did not bite")

    return sale_under_fault(
        ctx, rng, "written-twice", units=80, buyers=200, fault=fault, when=(0.0, 0.2), writers=3, after=after,
        extra={"SECKILL_ACK": "reserved", "SECKILL_WRITER_CLAIM_IDLE_MS": "1"},
    )  # fmt: skip

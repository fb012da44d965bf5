"""The faults of `make cluster-test`, each fired once the sale has sold a given share.

15 %: SIGKILL the Redis master serving most of the sale's key spaces (reserve, buckets);
a side thread times the failover (a replica serving its slots, cluster_state ok) and
starts the killed node again, which rejoins as a replica. 35 %: cut web2 off (its link
down) for CUT_SECONDS. 50 %: SIGSTOP the writer on wr1 for STOP_SECONDS, so the other
writer claims its entries and it resumes mid-batch. Every event is logged with its time.
"""

import os
import signal
import threading
import time

from chaos.multihost import hosts as hosts_mod

CUT_HOST = "web2"
PAUSED_WRITER = "wr1"
# The host stays cut off longer than a buyer waits for an answer (chaos/multihost/buyers.py),
# so purchases in flight there time out and are sent again, with their keys, elsewhere.
CUT_SECONDS = 12.0
STOP_SECONDS = 8.0  # the writer: well past the 3 s after which the other claims its entries


def sale_slots(activity):
    """{slot: [key spaces]} of the sale's reserve and buckets."""
    from redis.crc import key_slot

    from seckill import keys

    found = {}
    found.setdefault(key_slot(keys.reserve(activity.pk).encode()), []).append("reserve")
    for space in keys.spaces(activity.pk, activity.bucket_count):
        found.setdefault(key_slot(keys.stock(space).encode()), []).append(space)
    return found


def sold(activity_id):
    from seckill.models import SeckillOrder

    return SeckillOrder.objects.filter(activity_id=activity_id).count()


class Faults:
    """The three faults, each fired when the sale has sold a given share, recorded with times."""

    def __init__(self, network, hosts, activity, start):
        self.network, self.hosts, self.activity, self.start = network, hosts, activity, start
        self.events = []
        self.side = []
        self.done = threading.Event()

    def log(self, what, **details):
        self.events.append({"t": round(time.time() - self.start, 2), "event": what, **details})
        print(f"  [{self.events[-1]['t']:7.2f} s] {what} {details or ''}", flush=True)

    def wait_share(self, share):
        while not self.done.is_set():
            if sold(self.activity.pk) >= share * self.activity.stock_total:
                return True
            time.sleep(0.2)
        return False

    def later(self, seconds, action):
        thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
        thread.start()
        self.side.append(thread)

    def run(self):
        from django.db import connection

        try:
            if self.wait_share(0.15):
                self.kill_master()
            if self.wait_share(0.35):
                self.network.cut(CUT_HOST)
                self.log("web host cut off", host=CUT_HOST)
                self.later(CUT_SECONDS, self.restore_host)
            if self.wait_share(0.5):
                self.hosts.stop_process(self.hosts.writers[PAUSED_WRITER])
                self.log("writer stopped (SIGSTOP)", host=PAUSED_WRITER)
                self.later(STOP_SECONDS, self.resume_writer)
        finally:
            connection.close()

    def kill_master(self):
        slots = sale_slots(self.activity)
        owner = {slot: hosts_mod.slot_master(hosts_mod.REDIS_PORTS[0], slot) for slot in slots}
        masters = {}
        for slot, spaces in slots.items():
            masters.setdefault(owner[slot], []).extend(spaces)
        port = max(masters, key=lambda p: len(masters[p]))
        served = [s for s in slots if owner[s] == port]
        os.kill(hosts_mod.node_pid(port), signal.SIGKILL)
        self.log("Redis master SIGKILLed", port=port, serving=masters[port])

        def failover():
            seconds = hosts_mod.wait_failover(served, port)
            self.log("replica promoted", port=port, failover_s=None if seconds is None else round(seconds, 2))
            revived = hosts_mod.cluster_script("revive", str(port), check=False)
            self.log("killed node restarted", port=port, ok=revived.returncode == 0)

        thread = threading.Thread(target=failover, daemon=True)
        thread.start()
        self.side.append(thread)

    def restore_host(self):
        self.network.restore(CUT_HOST)
        self.log("web host link restored", host=CUT_HOST)

    def resume_writer(self):
        self.hosts.continue_process(self.hosts.writers[PAUSED_WRITER])
        self.log("writer resumed (SIGCONT)", host=PAUSED_WRITER)

    def join(self):
        for thread in self.side:
            thread.join(90)

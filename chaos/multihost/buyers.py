"""One web host's load generator: its own slice of customers, each buying as a real one would.

    python chaos/multihost/buyers.py PLAN.json RESULT.json

The plan names the hosts (this generator's own first), the sale's purchase path, the
customers ([user id, API token]), how many purchases each tries (distinct
Idempotency-Keys, so the per-customer limit is what stops the extra ones), which of them
go to the next host instead (the same customer on a second device behind another host),
the thread count and the wall-clock moment every generator starts at.

A purchase is retried until it gets a final answer, as a customer's app would: after 503
(unavailable) or 429 on the same host, and after no answer at all (connection refused or
timed out: the host is cut off) on the next host, with the same Idempotency-Key, so a
purchase the first host did take is answered from its stored result instead of being
bought twice. Final: 201/202 (acknowledged, with the order number), or a 4xx refusal
(sold_out, limit_exceeded...). Any other 5xx is a server error and counted as such.

Standard library only: it runs beside the shop, not inside it.
"""

import http.client
import json
import queue
import random
import socket
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 5.0  # above the committed mode's 2 s wait for the writer plus Redis's 1 s timeout


class Connection(http.client.HTTPConnection):
    """Connect within CONNECT_TIMEOUT_S (a cut-off host never answers the SYN), then read for longer."""

    def connect(self):
        self.sock = socket.create_connection((self.host, self.port), CONNECT_TIMEOUT_S)
        self.sock.settimeout(READ_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Buyer:
    """One thread's connections, one per host, kept alive between requests."""

    def __init__(self, hosts):
        self.hosts = [urlsplit(h) for h in hosts]
        self.conns = {}

    def post(self, host_index, path, token, key):
        """(status, body); status 0 when the host gave no answer. A kept-alive connection the
        server had closed meanwhile is retried once on a new one before that counts."""
        reused = host_index in self.conns
        status, body = self._post(host_index, path, token, key)
        if status == 0 and reused and body["error"] != "TimeoutError":
            status, body = self._post(host_index, path, token, key)
        return status, body

    def _post(self, host_index, path, token, key):
        url = self.hosts[host_index]
        conn = self.conns.get(host_index)
        if conn is None:
            conn = self.conns[host_index] = Connection(url.hostname, url.port)
        headers = {
            "Authorization": f"Token {token}",
            "Idempotency-Key": key,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            conn.request("POST", path, body='{"quantity": 1}', headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            self.conns.pop(host_index, None)
            return 0, {"error": type(exc).__name__}
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            self.conns.pop(host_index, None)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"raw": raw[:200].decode(errors="replace")}
        if isinstance(body, dict) and response.getheader("Idempotent-Replayed") == "true":
            body["_replayed"] = True  # answered from the key's first attempt
        return response.status, body


class Purchase:
    """One purchase (one Idempotency-Key) on its way to a final answer."""

    def __init__(self, plan, user_id, token, attempt):
        self.user_id, self.token, self.attempt = user_id, token, attempt
        self.key = f"mh-{plan['run']}-{user_id}-{attempt}"
        self.index = 1 % len(plan["hosts"]) if attempt in plan.get("elsewhere", []) else 0
        self.tries = 0
        self.hops = []
        self.not_before = 0.0

    def final(self, status, code, order=None, replayed=False):
        return {"user_id": self.user_id, "attempt": self.attempt, "key": self.key, "status": status, "code": code,
                "order": order, "host": self.index, "tries": self.tries, "hops": self.hops,
                "replayed": replayed}  # fmt: skip


def try_once(buyer, plan, purchase, tally):
    """One request; returns the final answer, or None when the purchase must be tried again.

    The caller puts an unfinished purchase back at the end of the queue, so a customer
    waiting out a failover holds no thread: the other customers keep buying meanwhile,
    as independent customers would."""
    purchase.tries += 1
    sent = time.monotonic()
    status, body = buyer.post(purchase.index, plan["path"], purchase.token, purchase.key)
    code = body.get("code") if isinstance(body, dict) else None
    tally.add(status, code, purchase.index, time.monotonic() - sent)
    if status in (201, 202) or (400 <= status < 500 and status != 429):
        order = body.get("order") if isinstance(body, dict) else None
        number = order.get("number") if isinstance(order, dict) else None
        return purchase.final(status, code, number, replayed=bool(body.get("_replayed")))
    if time.time() > plan["deadline"]:
        return purchase.final(status, "gave_up")
    if status == 0:
        purchase.index = (purchase.index + 1) % len(plan["hosts"])  # no answer: the next host, same key
        purchase.hops.append(purchase.index)
        purchase.not_before = time.time() + 0.05
    else:
        purchase.not_before = time.time() + (0.3 if status == 429 else 0.1)
    return None


class Tally:
    """Every answer by (status, code), per host and per second since the start."""

    def __init__(self, start):
        self.start = start
        self.lock = threading.Lock()
        self.by_code = Counter()
        self.by_second = Counter()
        self.slow = Counter()  # answers that took over a second, by (second, host, status)

    def add(self, status, code, host, seconds):
        second = int(time.time() - self.start)
        with self.lock:
            self.by_code[f"{status} {code or ''}".strip()] += 1
            self.by_second[(second, host, status)] += 1
            if seconds > 1.0:
                self.slow[(second, host, status)] += 1


def main(plan_path, result_path):
    with open(plan_path) as f:
        plan = json.load(f)
    purchases = [Purchase(plan, u, t, a) for u, t in plan["customers"] for a in range(plan["attempts"])]
    random.Random(plan["seed"]).shuffle(purchases)  # noqa: S311 - a customer's purchases land on different threads
    work = queue.Queue()
    for purchase in purchases:
        work.put(purchase)
    unfinished = [len(purchases)]
    finals = []
    lock = threading.Lock()
    while time.time() < plan["start_at"]:
        time.sleep(0.005)
    tally = Tally(plan["start_at"])

    def loop():
        buyer = Buyer(plan["hosts"])
        while True:
            try:
                purchase = work.get(timeout=0.05)
            except queue.Empty:
                with lock:
                    if unfinished[0] == 0:
                        return
                continue
            wait = purchase.not_before - time.time()
            if wait > 0:
                time.sleep(wait)
            answer = try_once(buyer, plan, purchase, tally)
            if answer is None:
                work.put(purchase)
                continue
            answer["t"] = round(time.time() - plan["start_at"], 3)
            with lock:
                finals.append(answer)
                unfinished[0] -= 1

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(plan["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(result_path, "w") as f:
        json.dump(
            {
                "finals": finals,
                "answers": dict(tally.by_code),
                # [second, host index, status, answers, of which over 1 s]
                "timeline": [
                    [s, h, st, n, tally.slow[(s, h, st)]] for (s, h, st), n in sorted(tally.by_second.items())
                ],
                "elapsed_s": round(time.time() - plan["start_at"], 2),
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

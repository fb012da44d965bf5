"""Buyers: plain HTTP requests from threads, released together by a barrier.

http.client from the standard library, one connection per thread, so the driver adds
little CPU of its own and every request is a real request to gunicorn.
"""

import http.client
import json
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Answer:
    status: int  # 0: no answer (connection refused, reset, timeout)
    body: dict = field(default_factory=dict)
    error: str = ""
    resent: bool = False  # the first attempt's connection broke (e.g. its worker was killed)

    @property
    def code(self):
        return self.body.get("code") if isinstance(self.body, dict) else None


class Client:
    def __init__(self, port, token=None, timeout=15.0, ip=None):
        self.port, self.token, self.timeout, self.ip = port, token, timeout, ip
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        all_headers = {"Accept": "application/json", **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Token {self.token}"
        payload = None
        if body is not None:
            payload = json.dumps(body)
            all_headers["Content-Type"] = "application/json"
        for attempt in range(2):  # one reconnect when a kept-alive connection went stale
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                self.conn.request(method, path, body=payload, headers=all_headers)
                response = self.conn.getresponse()
                raw = response.read()
                try:
                    data = json.loads(raw) if raw else {}
                except ValueError:
                    data = {"raw": raw[:200].decode(errors="replace")}
                return Answer(response.status, data, resent=attempt > 0)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 1 or isinstance(exc, TimeoutError):
                    return Answer(0, error=type(exc).__name__)
        return Answer(0, error="unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def together(calls, timeout=120):
    """Run each zero-argument callable in its own thread, all released at once."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(i):
        try:
            barrier.wait(timeout=30)
            results[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - reported to the scenario
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(calls))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return results


def buyers_loop(port, tokens, path, *, until, on_answer, keys=None, threads=16):
    """`threads` loops, each buying for its share of `tokens` until `until()` is true.

    Each customer retries after 429/503 and stops after a final answer (201, 202, 409).
    `on_answer(token, answer)` records every answer; it must be thread-safe.
    """
    shares = [tokens[i::threads] for i in range(threads)]

    def loop(share):
        clients = {t: Client(port, t) for t in share}
        pending = list(share)
        while pending and not until():
            token = pending.pop(0)
            headers = {"Idempotency-Key": keys[token]} if keys else None
            answer = clients[token].request("POST", path, body={"quantity": 1}, headers=headers)
            on_answer(token, answer)
            if answer.status in (0, 429, 503) or answer.status >= 500:
                pending.append(token)  # try again later, as a real customer would
                time.sleep(0.02)
        for c in clients.values():
            c.close()

    return together([lambda s=s: loop(s) for s in shares if s], timeout=300)

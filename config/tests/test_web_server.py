"""The web server as the Procfile runs it: real gunicorn processes, gthread workers.

- /metrics in prometheus_client's multiprocess mode (config/metrics.py): with two
  workers, every scrape reads the same totals and one process_start_time_seconds.
- An idle keep-alive connection does not hold a worker (config/gunicorn.py).
"""

import glob
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from prometheus_client.mmap_dict import MmapedDict
from rest_framework.authtoken.models import Token

from seckill.tests.conftest import create_customers, create_sale

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "web-server-test-token"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, headers=None, timeout=10):
    request = urllib.request.Request(url, headers={"Connection": "close", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def gunicorn(tmp_path):
    """gunicorn with the Procfile's worker class on the test database and Redis, two workers."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    port = _free_port()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"mysql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": TOKEN,
        "DB_CONN_MAX_AGE": "0",
        # Each purchase writes its own order (the test settings' eager writer) and answers 201
        # once it is committed; on a busy machine that can take longer than the default 2 s,
        # and a 202 would say nothing about what this test checks (the metrics).
        "SECKILL_ACK_WAIT_SECONDS": "15",  # within the client's 20 s timeout below
    }
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "config.wsgi",
        "--config",
        "python:config.gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--worker-class",
        "gthread",
        "--threads",
        "1",
        "--timeout",
        "30",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"{base}/healthz", timeout=2)[0] in (200, 503):
                    break
            except OSError:
                pass
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "gunicorn did not answer within 30 s"
            time.sleep(0.2)
        yield {"base": base, "pid": process.pid, "metrics_dir": metrics_dir}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _warm_ups_per_process(metrics_dir):
    """{pid: warm-up lock acquisitions} from each process's own metrics file."""
    per_pid = {}
    for path in glob.glob(str(metrics_dir / "counter_*.db")):
        pid = int(re.search(r"counter_(\d+)\.db", path).group(1))
        for key, value, _, _ in MmapedDict.read_all_values_from_file(path):
            _, sample, labels, _ = json.loads(key)
            if sample == "seckill_lock_acquired_total" and labels.get("lock") == "seckill_warm":
                per_pid[pid] = per_pid.get(pid, 0) + value
    return per_pid


def _burst_of_first_purchases(base, count, prefix):
    """`count` customers each buy the first unit of a sale of their own, all at once: each
    purchase finds its sale not loaded and warms it up under the warm-up lock."""
    sales = [create_sale(stock=2, warm=False) for _ in range(count)]
    buyers = create_customers(count, prefix=prefix)
    tokens = dict(Token.objects.filter(user__in=buyers).values_list("user_id", "key"))
    statuses = []
    barrier = threading.Barrier(count)

    def buy(index):
        request = urllib.request.Request(
            f"{base}/api/seckill/activities/{sales[index].pk}/purchase/",
            data=b'{"quantity": 1}',
            method="POST",
            headers={
                "Authorization": f"Token {tokens[buyers[index].pk]}",
                "Content-Type": "application/json",
                "Connection": "close",
            },
        )
        barrier.wait(timeout=10)
        with urllib.request.urlopen(request, timeout=20) as response:
            statuses.append(response.status)

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [201] * count, statuses


def _sample(body, name, labels=""):
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", body, re.MULTILINE)
    return None if match is None else float(match.group(1))


def _labelled(body, name, **labels):
    """The sample of `name` with exactly these labels, in whatever order they are printed."""
    for match in re.finditer(rf"^{re.escape(name)}\{{([^}}]*)\}} (\S+)$", body, re.MULTILINE):
        if dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
            return float(match.group(2))
    return None


def test_every_scrape_reads_the_totals_of_both_workers(gunicorn):
    base, metrics_dir = gunicorn["base"], gunicorn["metrics_dir"]
    warmed = 0
    for attempt in range(4):  # until both workers have served some of the purchases
        _burst_of_first_purchases(base, 6, prefix=f"burst{attempt}-")
        warmed += 6
        per_pid = _warm_ups_per_process(metrics_dir)
        if len([pid for pid, value in per_pid.items() if value]) >= 2:
            break
    assert len([v for v in per_pid.values() if v]) >= 2, f"one worker served every purchase: {per_pid}"
    assert sum(per_pid.values()) == warmed

    bodies = [_get(f"{base}/metrics", {"Authorization": f"Bearer {TOKEN}"}) for _ in range(6)]
    assert [status for status, _ in bodies] == [200] * 6
    labels = '{backend="redis",lock="seckill_warm"}'
    assert [_sample(body, "seckill_lock_acquired_total", labels) for _, body in bodies] == [warmed] * 6
    starts = {_sample(body, "process_start_time_seconds") for _, body in bodies}
    assert len(starts) == 1 and None not in starts, starts  # the gunicorn master's, whichever worker answers
    written = {_sample(body, "seckill_writer_orders_written_total") for _, body in bodies}
    assert written == {float(warmed)}, written  # each purchase's worker wrote its order (eager writer)
    # django-prometheus counts in the same files: its request counter adds up both workers too.
    answered = {
        _labelled(
            body,
            "django_http_responses_total_by_status_view_method_total",
            status="201",
            view="api:sale-purchase",
            method="POST",
        )
        for _, body in bodies
    }
    assert answered == {float(warmed)}, answered
    for _, body in bodies:
        assert "# HELP seckill_writer_waiting_intents" in body  # the lag collector is on the served registry
        assert 'seckill_reconciliation_open_discrepancies{kind="oversold"} 0.0' in body


def _port(gunicorn):
    return int(gunicorn["base"].rsplit(":", 1)[1])


def test_idle_keep_alive_connections_do_not_hold_the_workers(gunicorn):
    """Eight kept-alive connections, idle after their request: more than the two workers have
    threads. They wait in the workers' pollers, so the next request is answered at once."""
    kept = []
    for _ in range(8):
        sock = socket.create_connection(("127.0.0.1", _port(gunicorn)), timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "no answer on a kept-alive connection"
        kept.append(sock)
    try:
        started = time.monotonic()
        status, _ = _get(f"{gunicorn['base']}/healthz", timeout=10)
        elapsed = time.monotonic() - started
    finally:
        for sock in kept:
            sock.close()
    assert status == 200 and elapsed < 1.5, (status, elapsed)

"""Profile the seckill purchase path in one process: queries, Redis round trips, where the time goes.

    .venv/bin/python -m bench.profiling            # or: make bench ARGS=--profile

Starts its own redis-server and one order writer (`manage.py seckill_writer`, like
bench/run.py), uses the flashshop_bench database, and sends purchases through the whole
WSGI application (middleware, DRF authentication, serializers, the purchase path, the
response), one at a time, with no contention, in both acknowledgement levels
(SECKILL_ACK=committed: the request waits for the writer's commit; reserved: 202 at once):

- DB queries per purchase, by statement (django's CaptureQueriesContext);
- Redis round trips per purchase, by command, counted at the socket (every packet
  redis-py sends), and the commands Redis executed (INFO commandstats, scripts'
  inner commands included);
- wall time per request of the purchase, the sold-out answer and the ceiling view;
- a pyinstrument profile of the purchases, summed by stage.

Writes bench/results/profile.json and profile.txt (pyinstrument's tree).
"""

import argparse
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import stack as stk  # noqa: E402
from bench.run import RESULTS, server_env  # noqa: E402

# Stages of a purchase, as (label, file fragment, function name); the time of a stage is
# the time of the outermost frames that match, so nested matches are not counted twice.
STAGES = (
    ("DRF token authentication (token + user query)", "rest_framework/authentication.py", "authenticate"),
    ("input serializer (PurchaseInputSerializer)", "rest_framework/serializers.py", "is_valid"),
    ("sale settings from process memory (cache.sale_info)", "seckill/cache.py", "sale_info"),
    ("order number and reservation id (new_order_number, uuid4)", "orders/models.py", "new_order_number"),
    ("purchase.lua (stock.reserve)", "seckill/stock.py", "reserve"),
    ("wait for the writer's commit (intents.wait_for, BLPOP)", "seckill/intents.py", "wait_for"),
    ("the written order from the writer's answer (order_as_written)", "orders/rows.py", "order_as_written"),
    ("response body (order_payload / pending_payload)", "orders/serializers.py", "_payload"),
    ("response rendering (JSONRenderer)", "rest_framework/renderers.py", "render"),
    ("logging (django.request 4xx warnings etc.)", "logging/__init__.py", "handle"),
)

_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


class RedisCounter:
    """Counts what redis-py sends: one packet = one round trip; the command names inside it."""

    def __init__(self):
        self.round_trips = 0
        self.commands = Counter()
        self._orig = None

    def __enter__(self):
        from redis.connection import AbstractConnection

        self._orig = AbstractConnection.send_packed_command
        counter = self

        def send_packed_command(conn, command, check_health=True):
            counter.round_trips += 1
            data = command if isinstance(command, bytes | bytearray) else b"".join(bytes(c) for c in command)
            for name in _COMMAND.findall(data):
                counter.commands[name.decode().upper()] += 1
            return counter._orig(conn, command, check_health)

        AbstractConnection.send_packed_command = send_packed_command
        return self

    def __exit__(self, *exc):
        from redis.connection import AbstractConnection

        AbstractConnection.send_packed_command = self._orig


class PingCounter:
    """Counts the connection health checks (CONN_HEALTH_CHECKS: one ping per request); not queries."""

    def __init__(self):
        self.pings = 0

    def __enter__(self):
        from django.db.backends.mysql.base import DatabaseWrapper

        self._orig = DatabaseWrapper.is_usable
        counter = self

        def is_usable(wrapper):
            counter.pings += 1
            return counter._orig(wrapper)

        DatabaseWrapper.is_usable = is_usable
        return self

    def __exit__(self, *exc):
        from django.db.backends.mysql.base import DatabaseWrapper

        DatabaseWrapper.is_usable = self._orig


def commandstats(client):
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}


def wsgi_post(app, path, token, body=b'{"quantity": 1}'):
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8391",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    status = []

    def start_response(s, headers, exc_info=None):
        status.append(int(s.split()[0]))

    chunks = app(environ, start_response)
    b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return status[0]


def stage_times(root):
    """Seconds per stage, summing the outermost matching frames of the pyinstrument tree."""
    totals = Counter()

    def walk(frame, inside):
        label = None
        path = (frame.file_path or "").replace("\\", "/")
        for name, fragment, function in STAGES:
            if (function == frame.function or (function.startswith("_") and frame.function.endswith(function))) and (
                fragment in path
            ):
                label = name
                break
        if label and label not in inside:
            totals[label] += frame.time
            inside = inside | {label}
        for child in frame.children:
            walk(child, inside)

    walk(root, frozenset())
    return totals


def measure(app, path_for, tokens, n):
    statuses = Counter()
    started = time.perf_counter()
    for token in tokens[:n]:
        statuses[wsgi_post(app, path_for(), token)] += 1
    return (time.perf_counter() - started) / n, statuses


# Where the order writer's time goes (cProfile, cumulative seconds of these functions).
WRITER_STAGES = (
    ("read the intents (intents.read_new: XREADGROUP, parsing)", "seckill/intents.py", "read_new"),
    ("earlier deliveries (order_write._skip_settled)", "seckill/services/order_write.py", "_skip_settled"),
    ("the batch transaction (order_write._batch_tx)", "seckill/services/order_write.py", "_batch_tx"),
    ("  in it: SQL text, parameter escaping (MySQLdb _mogrify)", "MySQLdb/cursors.py", "_mogrify"),
    ("  in it: Order/OrderItem instances for the answers (rows._as_loaded)", "orders/rows.py", "_as_loaded"),
    ("MariaDB round trips, every statement (MySQLdb query)", "MySQLdb/connections.py", "query"),
    ("settle: answers, XACK, XDEL, HDEL (intents.settle, one pipeline)", "seckill/intents.py", "settle"),
)


def profile_writer(intents=10_000):
    """One writer (writer.drain, in this process) on a stream preloaded by purchase.lua, under cProfile."""
    import cProfile
    import pstats

    from bench import data, writer_phase
    from seckill import writer

    sale = data.create_sale("profile-writer", intents)
    writer_phase.preload(sale, data.writer_customers(intents))
    prof = cProfile.Profile()
    wall, cpu = time.perf_counter(), time.process_time()
    prof.enable()
    written = writer.drain(sale)
    prof.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = pstats.Stats(prof).stats
    stages = {}
    for label, fragment, function in WRITER_STAGES:
        total = sum(
            v[3] for (path, _line, name), v in stats.items() if name == function and fragment in path.replace("\\", "/")
        )
        stages[label] = round(1e6 * total / written, 1)
    return {
        "intents": written,
        "orders_per_s_under_cprofile": round(written / wall, 1),
        "cpu_share_of_wall": round(cpu / wall, 2),
        "us_per_order_by_stage": stages,
    }


def profile(n=300, out_dir=RESULTS, stop_writer=None):
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext, override_settings
    from pyinstrument import Profiler

    from bench import data
    from config.wsgi import application
    from seckill import keys as keys_module
    from seckill import stock

    data.ensure_database()
    data.migrate()
    data.reset_tables()
    keys, _ = data.customers(max(5000, 7 * n + 200))
    fresh = iter(keys)  # every measurement takes customers nobody has used yet

    def take(count):
        return [next(fresh) for _ in range(count)]

    client = stock.redis()
    result = {"purchases_profiled": n}

    # 1. the ceiling view: the fixed cost every request pays (middleware, token auth, DRF)
    for t in take(20):
        wsgi_post(application, "/bench/ceiling/1/", t)
    result["ceiling_ms"] = round(1000 * measure(application, lambda: "/bench/ceiling/1/", take(n), n)[0], 2)
    with CaptureQueriesContext(connection) as queries, RedisCounter() as rc:
        measure(application, lambda: "/bench/ceiling/1/", take(n), n)
    result["ceiling_queries_per_request"] = round(len(queries.captured_queries) / n, 2)
    result["ceiling_redis_round_trips_per_request"] = round(rc.round_trips / n, 2)

    # 2. purchases: a sale with stock for everybody, so every request buys
    sale = data.create_sale("profile", 5 * n + 100)
    path = f"/api/seckill/activities/{sale}/purchase/"
    time.sleep(2.5)  # the writer lists the live sales every 2 s (seckill/writer.py SALES_REFRESH_S)
    for t in take(max(n // 10, 1)):
        wsgi_post(application, path, t)

    with CaptureQueriesContext(connection) as queries, PingCounter() as pings:
        _, statuses = measure(application, lambda: path, take(n), n)
    result["db_health_check_pings_per_purchase"] = round(pings.pings / n, 2)
    by_statement = Counter(" ".join(q["sql"].split()[:4])[:80] for q in queries.captured_queries)
    result["queries_per_purchase"] = round(len(queries.captured_queries) / n, 2)
    result["queries_by_statement_per_purchase"] = {k: round(v / n, 2) for k, v in by_statement.most_common()}
    result["purchase_statuses"] = dict(statuses)
    reset_queries()

    before = commandstats(client)
    with RedisCounter() as rc:
        per_buy, statuses = measure(application, lambda: path, take(n), n)
    after = commandstats(client)
    result["purchase_ms"] = round(1000 * per_buy, 2)
    result["redis_round_trips_per_purchase"] = round(rc.round_trips / n, 2)
    result["redis_client_commands_per_purchase"] = {k: round(v / n, 2) for k, v in rc.commands.most_common()}
    executed = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    executed.pop("info", None)
    result["redis_server_commands_per_purchase"] = {
        k: round(v / n, 2) for k, v in sorted(executed.items(), key=lambda kv: -kv[1]) if v
    }

    profiler = Profiler(interval=0.0005)
    profiler.start()
    measure(application, lambda: path, take(n), n)
    profiler.stop()
    purchase_text = profiler.output_text(unicode=True, color=False, show_all=False, timeline=False)
    session_root = profiler.last_session.root_frame()
    total = session_root.time
    stages = stage_times(session_root)
    result["profiled_ms_per_purchase"] = round(1000 * total / n, 2)
    result["stages_ms_per_purchase"] = {k: round(1000 * v / n, 3) for k, v in stages.most_common()}
    result["stages_share"] = {k: round(v / total, 3) for k, v in stages.most_common()}

    # 2b. SECKILL_ACK=reserved: 202 "confirming" as soon as purchase.lua has accepted
    with override_settings(SECKILL_ACK="reserved"):
        for t in take(10):
            wsgi_post(application, path, t)
        with CaptureQueriesContext(connection) as queries, RedisCounter() as rc:
            per_reserved, statuses = measure(application, lambda: path, take(n), n)
        result["reserved_purchase_ms"] = round(1000 * per_reserved, 2)
        result["reserved_statuses"] = dict(statuses)
        result["reserved_queries_per_purchase"] = round(len(queries.captured_queries) / n, 2)
        result["reserved_redis_round_trips_per_purchase"] = round(rc.round_trips / n, 2)
        result["reserved_redis_client_commands_per_purchase"] = {
            k: round(v / n, 2) for k, v in rc.commands.most_common()
        }
        profiler = Profiler(interval=0.0002)
        profiler.start()
        measure(application, lambda: path, take(n), n)
        profiler.stop()
        reserved_root = profiler.last_session.root_frame()
        result["reserved_stages_ms_per_purchase"] = {
            k: round(1000 * v / n, 3) for k, v in stage_times(reserved_root).most_common()
        }
        result["reserved_profiled_ms_per_purchase"] = round(1000 * reserved_root.time / n, 2)
        reserved_text = profiler.output_text(unicode=True, color=False, show_all=False, timeline=False)

    # 3. the same sale once sold out: the in-process flag answers (customers who never bought)
    remaining = stock.remaining(sale) or 0
    client.set(keys_module.stock(sale), 0)
    for t in take(5):
        wsgi_post(application, path, t)
    soldout_customers = take(n)
    with CaptureQueriesContext(connection) as queries, RedisCounter() as rc:
        per_soldout, statuses = measure(application, lambda: path, soldout_customers, n)
    result["soldout_ms"] = round(1000 * per_soldout, 2)
    result["soldout_statuses"] = dict(statuses)
    result["soldout_queries_per_request"] = round(len(queries.captured_queries) / n, 2)
    result["soldout_redis_round_trips_per_request"] = round(rc.round_trips / n, 2)
    # the same, with the django.request WARNING line per 4xx switched off
    logging.disable(logging.WARNING)
    try:
        result["soldout_ms_without_4xx_log_line"] = round(
            1000 * measure(application, lambda: path, soldout_customers, n)[0], 2
        )
    finally:
        logging.disable(logging.NOTSET)
    profiler = Profiler(interval=0.0002)
    profiler.start()
    measure(application, lambda: path, soldout_customers, n)
    profiler.stop()
    soldout_root = profiler.last_session.root_frame()
    result["soldout_stages_ms"] = {k: round(1000 * v / n, 3) for k, v in stage_times(soldout_root).most_common()}
    soldout_text = profiler.output_text(unicode=True, color=False, show_all=False, timeline=False)
    client.set(keys_module.stock(sale), remaining)

    # 4. the order writer alone, in this process (the writer process would drain the stream first)
    if stop_writer is not None:
        stop_writer()
    result["writer"] = profile_writer()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "profile.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "profile.txt").write_text(
        "=== purchases, SECKILL_ACK=committed (a writer process commits; the request waits) ===\n"
        + purchase_text
        + "\n=== purchases, SECKILL_ACK=reserved ===\n"
        + reserved_text
        + "\n=== sold-out answers ===\n"
        + soldout_text
    )
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description="Profile the seckill purchase path in one process.")
    p.add_argument("-n", type=int, default=300, help="purchases per measurement")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    redis_port = stk.free_port(6391)
    env = server_env(redis_port, "committed")
    os.environ.update(env)
    import django

    django.setup()
    stack = stk.Stack(tempfile.mkdtemp(prefix="flashshop-bench-profile-"))
    try:
        stk.start_redis(stack, redis_port)
        writer = stk.start_writer(stack, "profile-writer", env)  # the committed purchases wait for its commit
        result = profile(args.n, args.out, stop_writer=lambda: stack.stop(writer))
    finally:
        logging.disable(logging.WARNING)  # the units-back listener thread would log Redis going away
        stack.close()
        shutil.rmtree(stack.workdir, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Faults of MariaDB: the sale row held by another connection past the lock wait timeout."""

import time

import MySQLdb
from django.db import connection

from chaos.scenarios.harness import sale_under_fault

# --- Lock-wait timeout in MariaDB on the order write ---------------------------------------------


def db_lock_wait(ctx, rng):
    """Another connection holds the sale row for 7 s while the lock wait timeout is 2 s: the
    writer's batch transaction waits, is retried, and the intents stay in the stream until
    the row is free. Purchases are still acknowledged meanwhile (202 confirming once the
    commit wait runs out), never a 500; the writer survives, and every 202 becomes its
    order when the lock goes."""
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
        confirming = recorder.count(lambda a: a.status == 202)
        result.notes.append(f"{confirming} answers were 202 confirming")
        if not confirming:
            result.violations.append("no purchase outwaited the commit: the fault did not bite")

    return sale_under_fault(ctx, rng, "db-lock-wait", units=40, buyers=100, fault=fault, when=(0.0, 0.1), after=after)

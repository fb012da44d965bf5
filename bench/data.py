"""The benchmark's data, written and checked straight in the bench database.

Imported by bench/run.py after django.setup() with the bench environment
(DATABASE_URL=.../flashshop_bench, REDIS_URL on the bench's own redis-server).
Customers and tokens are bulk-inserted (no password hashing); every round gets fresh
sale and product rows, so strategies and rounds never share stock.
"""

import time
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import MySQLdb
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from bench.strategies.views import naive_keys
from orders.models import Order, OrderItem
from seckill import keys, services, stock
from seckill.models import SeckillActivity, SeckillOrder, SeckillRefusal
from shop.models import Product

CUSTOMER_PREFIX = "benchbuyer"
# Tables emptied at the start of a run: everything the shop writes, nothing of auth.
RESET_PREFIXES = ("shop_", "orders_", "seckill_", "django_session")


def ensure_database():
    db = settings.DATABASES["default"]
    name = db["NAME"]
    if not name.startswith("flashshop_bench"):
        raise RuntimeError(f"refusing to benchmark on database {name!r}: it must be flashshop_bench")
    params = {"host": db["HOST"] or "127.0.0.1", "user": db["USER"], "passwd": db["PASSWORD"] or ""}
    if db.get("PORT"):
        params["port"] = int(db["PORT"])
    conn = MySQLdb.connect(**params, connect_timeout=5)
    try:
        conn.cursor().execute(
            f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    finally:
        conn.close()


def migrate():
    call_command("migrate", interactive=False, verbosity=0)


def reset_tables():
    """Empty the shop's tables (orders, sales, products, refusals) from earlier runs; keep the customers."""
    if not connection.settings_dict["NAME"].startswith("flashshop_bench"):
        raise RuntimeError("reset_tables only runs on the bench database")
    tables = [t for t in connection.introspection.table_names() if t.startswith(RESET_PREFIXES)]
    with connection.cursor() as cursor:
        cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
        try:
            for table in tables:
                cursor.execute(f"TRUNCATE TABLE `{table}`")
        finally:
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
    return tables


def customers(count):
    """Token keys of `count` bench customers, created in bulk when they are not there yet."""
    User = get_user_model()
    users = User.objects.filter(username__startswith=CUSTOMER_PREFIX)
    tokens = list(Token.objects.filter(user__username__startswith=CUSTOMER_PREFIX).order_by("user_id"))
    if users.count() == count and len(tokens) == count:
        return [t.key for t in tokens], False
    Token.objects.filter(user__username__startswith=CUSTOMER_PREFIX).delete()
    _delete_users(users)
    User.objects.bulk_create(
        # "!" is Django's unusable-password marker: no hashing, and nobody can log in with a password.
        [User(username=f"{CUSTOMER_PREFIX}{i:05d}", password="!") for i in range(count)],  # noqa: S106
        batch_size=1000,
    )
    created = list(User.objects.filter(username__startswith=CUSTOMER_PREFIX).order_by("pk"))
    Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in created], batch_size=1000)
    keys = list(
        Token.objects.filter(user__username__startswith=CUSTOMER_PREFIX)
        .order_by("user_id")
        .values_list("key", flat=True)
    )
    return keys, True


def _delete_users(users):
    """Delete bench users with plain SQL: the shop's tables were emptied, nothing points at them."""
    ids = list(users.values_list("pk", flat=True))
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"DELETE FROM authtoken_token WHERE user_id IN ({marks})", chunk)  # noqa: S608
            cursor.execute(f"DELETE FROM {users.model._meta.db_table} WHERE id IN ({marks})", chunk)  # noqa: S608


def writer_customers(count):
    """Ids of `count` customers for the writer phase (no tokens: they never send a request).
    Created once; a later run that needs more adds the missing ones."""
    User = get_user_model()
    prefix = "benchwriter"
    have = set(User.objects.filter(username__startswith=prefix).values_list("username", flat=True))
    names = [f"{prefix}{i:06d}" for i in range(count)]
    User.objects.bulk_create(
        [User(username=n, password="!") for n in names if n not in have],  # noqa: S106 - unusable password
        batch_size=2000,
    )
    users = User.objects.filter(username__startswith=prefix).order_by("username")
    return list(users.values_list("pk", flat=True)[:count])


def _product(tag, units):
    slug = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
    return Product.objects.create(name=f"Bench {tag}", slug=slug, price=Decimal("100.00"), stock=units)


def create_sale(tag, units, limit=1):
    """A live, published, warmed sale of `units` units, as the admin and the beat job would leave it."""
    now = timezone.now()
    product = _product(tag, units)
    activity = SeckillActivity.objects.create(
        product=product,
        title=f"Bench {tag}",
        price=Decimal("60.00"),
        stock_total=units,
        per_user_limit=limit,
        starts_at=now - timedelta(seconds=60),
        ends_at=now + timedelta(hours=6),
    )
    services.activity_warm(activity_id=activity.pk)
    return activity.pk


def create_product(tag, units):
    return _product(tag, units).pk


def prepare_naive(product_id, units):
    """The stock hash of the incident's code (docs/architecture.md), loaded with the product's units; no lock held."""
    lock_key, info_key = naive_keys(product_id)
    client = stock.redis()
    client.delete(lock_key)
    client.hset(info_key, "stock", units)


def _outcome(total, per_user, limit):
    sold = sum(per_user.values())
    return {
        "stock": total,
        "sold": sold,
        "oversold": max(sold - total, 0),
        # Demand is several times the stock in every round (5,000 customers for 1,000 units),
        # so a unit left unsold at the end of the round is a unit lost.
        "undersold": max(total - sold, 0),
        "over_limit": sum(1 for units in per_user.values() if units > limit),
        "buyers": len(per_user),
    }


def sale_outcome(activity_id):
    activity = SeckillActivity.objects.get(pk=activity_id)
    per_user = Counter()
    for user_id, quantity in SeckillOrder.objects.filter(
        activity_id=activity_id, order__status__in=Order.LIVE_STATUSES
    ).values_list("user_id", "quantity"):
        per_user[user_id] += quantity
    result = _outcome(activity.stock_total, per_user, activity.per_user_limit)
    settled = set(SeckillOrder.objects.filter(activity_id=activity_id).values_list("reservation_id", flat=True))
    open_units = sum(r.quantity for r in stock.reservations(activity_id) if r.reservation_id not in settled)
    remaining = stock.remaining(activity_id)
    result.update(
        db_available=activity.stock_available,
        redis_remaining=remaining,
        open_reservations=open_units,
        # I5 conservation: every unit is sold, still on sale in Redis, or reserved on its way to an order.
        conserved=(remaining is not None and remaining + result["sold"] + open_units == activity.stock_total)
        and activity.stock_available == activity.stock_total - result["sold"],
        refused=SeckillRefusal.objects.filter(activity_id=activity_id).count(),
    )
    return result


def product_outcome(product_id, total, limit=1, naive=False):
    per_user = Counter()
    for user_id, quantity in OrderItem.objects.filter(
        product_id=product_id, order__status__in=Order.LIVE_STATUSES
    ).values_list("order__user_id", "quantity"):
        per_user[user_id] += quantity
    result = _outcome(total, per_user, limit)
    left = Product.objects.get(pk=product_id).stock
    if naive:
        _, info_key = naive_keys(product_id)
        redis_left = int(stock.redis().hget(info_key, "stock") or 0)
        result.update(redis_remaining=redis_left, conserved=redis_left + result["sold"] == total)
    else:
        result.update(db_available=left, conserved=left + result["sold"] == total)
    return result


def intents_waiting(activity_id):
    """Intents of the sale not yet settled by a writer (purchase.lua appends, the writer deletes)."""
    return stock.redis().xlen(keys.intents(activity_id))


def wait_drained(activity_id, timeout=180.0):
    """Wait until the writers have settled every intent of the sale; the seconds it took."""
    started = time.monotonic()
    while intents_waiting(activity_id) and time.monotonic() - started < timeout:
        time.sleep(0.05)
    if intents_waiting(activity_id):
        raise RuntimeError(f"sale {activity_id}: intents still waiting after {timeout:.0f} s (is a writer running?)")
    return round(time.monotonic() - started, 2)


def lost_acks(numbers):
    """Acknowledged (2xx) order numbers with no order row: the count, and up to five of them."""
    unique = set(numbers)
    found = set()
    chunk = 2000
    wanted = sorted(unique)
    for start in range(0, len(wanted), chunk):
        found.update(Order.objects.filter(number__in=wanted[start : start + chunk]).values_list("number", flat=True))
    missing = sorted(unique - found)
    return {
        "acks": len(numbers),
        "lost_acks": len(missing),
        "duplicate_acks": len(numbers) - len(unique),
        "lost_examples": missing[:5],
    }


def retire_sale(activity_id):
    """Move a measured sale's window into the past (DB only), so the writers, which poll every sale
    that ended less than a day ago, work on the sale under load and nothing else."""
    now = timezone.now()
    SeckillActivity.objects.filter(pk=activity_id).update(
        starts_at=now - timedelta(days=3), ends_at=now - timedelta(days=2)
    )

"""Every Redis key and lock name of the flash sale, built here and nowhere else.

Every key of one sale carries the hash tag `{<id>}`, so all of them live in one Redis
Cluster slot and each Lua script may touch them together. Lock names are names, not
keys: the lock library (locks/) turns them into its own keys.
"""

import hashlib


def _tag(activity_id):
    return f"seckill:{{{activity_id}}}"


def meta(activity_id):
    return f"{_tag(activity_id)}:meta"


def stock(activity_id):
    return f"{_tag(activity_id)}:stock"


def users(activity_id):
    return f"{_tag(activity_id)}:users"


def reservations(activity_id):
    return f"{_tag(activity_id)}:resv"


def due(activity_id):
    """Sorted set of reservation ids by payment deadline: the per-order expiry countdown."""
    return f"{_tag(activity_id)}:due"


def returned(activity_id):
    return f"{_tag(activity_id)}:returned"


def intents(activity_id):
    """Stream of accepted purchases on their way to the database (seckill/intents.py)."""
    return f"{_tag(activity_id)}:intents"


def answers(activity_id):
    """Hash of the first answer to each (customer, Idempotency-Key) of the sale."""
    return f"{_tag(activity_id)}:idem"


def answer_field(user_id, key):
    return f"{user_id}:{key}" if key else ""


def numbers(activity_id):
    """Hash: order number -> its intent, while the order is being written ("confirming")."""
    return f"{_tag(activity_id)}:numbers"


def written(activity_id, reservation_id):
    """List the writer pushes the outcome of one intent to; the web request waits on it."""
    return f"{_tag(activity_id)}:written:{reservation_id}"


# Pub/sub channel, not a key: a sale id published here means units of that sale came
# back on sale; every web process then forgets its "sold out" flag (seckill/cache.py).
UNITS_BACK_CHANNEL = "seckill:units-back"

WRITER_GROUP = "writers"


def rate_customer(activity_id, user_id):
    return f"{_tag(activity_id)}:rl:u:{user_id}"


def rate_ip(activity_id, ip):
    return f"{_tag(activity_id)}:rl:ip:{ip}"


def order_idempotency_key(activity_id, key):
    """The Idempotency-Key as stored on the order: scoped to the sale (Order's unique index is per customer)."""
    return f"sale{activity_id}:{key}" if key else None


def buyers_from_ip(activity_id, client_ip):
    """Set of the accounts that bought in this sale from one address (seckill/shared_ip.py); the address is hashed."""
    digest = hashlib.sha256(client_ip.encode()).hexdigest()[:24]
    return f"{_tag(activity_id)}:ipbuyers:{digest}"


def fence_scope(activity_id):
    """All customer locks of a sale share one fencing counter: tokens need only grow per
    customer, and one counter per sale is seeded once per sale, not once per customer."""
    return f"seckill:{activity_id}"


def warm_lock_name(activity_id):
    """The lock that lets one process at a time publish and load a sale."""
    return f"seckill-warm:{activity_id}"


def customer_lock_name(activity_id, user_id):
    """The per-(activity, customer) lock that serialises one customer's requests."""
    return f"seckill:{activity_id}:customer:{user_id}"


def all_keys(activity_id):
    return [
        meta(activity_id),
        stock(activity_id),
        users(activity_id),
        reservations(activity_id),
        returned(activity_id),
        due(activity_id),
        intents(activity_id),
        answers(activity_id),
        numbers(activity_id),
    ]

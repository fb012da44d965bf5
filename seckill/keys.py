"""Every Redis key and lock name of the flash sale, built here and nowhere else.

Every key of one sale carries the hash tag `{<id>}`, so all of them live in one Redis
Cluster slot and each Lua script may touch them together. A hot sale split into stock
buckets (SeckillActivity.bucket_count > 1, docs/scale-out.md "Hot-sale buckets") has one
key space per bucket, tagged `{<id>:b<i>}`, each a mini-sale with the same keys, so the
functions below take a *space*: the sale's id (one bucket: the keys of every sale
before buckets existed) or a bucket's `space(id, i)`. The sale's central reserve and
its transfer records live under the sale's own tag. Lock names are names, not keys:
the lock library (locks/) turns them into its own keys.
"""

import hashlib
import zlib

MAX_BUCKETS = 16  # SeckillActivity.bucket_count at most


def space(activity_id, bucket, bucket_count=None):
    """The key space of one bucket of a sale; the sale's own id when it has one bucket."""
    if bucket_count == 1:
        return activity_id
    return f"{activity_id}:b{bucket}"


def sale_of(space_):
    """The sale id of a key space (an int id or "<id>:b<i>")."""
    return int(str(space_).split(":", 1)[0])


def bucket_of(space_):
    """The bucket index of a key space (0 for a sale with one bucket)."""
    text = str(space_)
    return int(text.split(":b", 1)[1]) if ":b" in text else 0


def spaces(activity_id, bucket_count):
    """Every key space of a sale, bucket 0 first."""
    if bucket_count <= 1:
        return [activity_id]
    return [space(activity_id, i) for i in range(bucket_count)]


def home_bucket(user_id, bucket_count):
    """A customer's home bucket: CRC-32 of the id, the same in every process and on every host
    (Python's hash() is salted per process), so one customer's requests always meet in one
    script and the per-customer limit is counted in one place."""
    if bucket_count <= 1:
        return 0
    return zlib.crc32(str(user_id).encode()) % bucket_count


def home_space(activity_id, user_id, bucket_count):
    return space(activity_id, home_bucket(user_id, bucket_count), bucket_count)


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


def reserve(activity_id):
    """String: the units of a bucketed sale not yet in any bucket, under the sale's own tag."""
    return f"{_tag(activity_id)}:reserve"


def bucket_count(activity_id):
    """String: how many buckets a bucketed sale has in Redis (absent for a one-bucket sale)."""
    return f"{_tag(activity_id)}:buckets"


def transfers_out(space_):
    """Hash: transfer id -> "target space:units:ms", units taken from this space and not yet
    known to be received (seckill/buckets.py, the two-step transfer)."""
    return f"{_tag(space_)}:xfer:out"


def transfers_in(space_):
    """Hash: transfer id -> units, every transfer this space has received (never twice)."""
    return f"{_tag(space_)}:xfer:in"


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

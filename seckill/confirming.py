"""The flash sale's answer to "where is order N?" while its order is not written yet.

Registered with orders/pending.py (seckill/apps.py). An order number the web process
handed out lives in the sale's `numbers` hash until the writer settles its intent; a
refused intent is a SeckillRefusal row. Looked up only when no Order has the number,
so it costs a normal order page nothing: one indexed query and one HGET per sale the
writers are working on.
"""

from datetime import UTC, datetime

from django.utils import timezone

from core.redis_errors import REDIS_ERRORS
from orders.pending import REFUSED, PendingOrder
from seckill import buckets, cache, intents, stock
from seckill.models import SeckillActivity, SeckillRefusal
from seckill.outcome import pending_of


def find(*, user, number):
    refusal = SeckillRefusal.objects.select_related("activity__product").filter(order_number=number, user=user).first()
    if refusal is not None:
        activity = refusal.activity
        return PendingOrder(
            number=number,
            product=activity.product,
            quantity=refusal.quantity,
            unit_price=activity.price,
            status=REFUSED,
            code=refusal.code,
            detail=refusal.detail,
        )
    since = timezone.now() - stock.WRITER_AFTER_END
    live = SeckillActivity.objects.filter(published_at__isnull=False, ends_at__gte=since).values_list("pk", flat=True)
    for activity_id in live:
        try:
            found = intents.pending_order(buckets.home(activity_id, user.pk), number)
        except REDIS_ERRORS:
            return None
        if found is not None and found[1] == user.pk:
            _rid, _user, quantity, deadline_ms = found
            sale = cache.sale_info(activity_id)
            return pending_of(
                sale, number=number, quantity=quantity, expires_at=datetime.fromtimestamp(deadline_ms / 1000, tz=UTC)
            )
    return None

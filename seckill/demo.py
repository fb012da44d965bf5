"""The demo flash sale that `seed_demo` sets up: it starts a minute after start-up."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from seckill import services
from seckill.models import SeckillActivity
from shop.models import Product

DEMO_PRODUCT = "aged-rice-wine-1l"
DEMO_TITLE = "Midnight rice wine drop"


def seed_demo_sale(now=None):
    """Create the demo sale unless one is live or upcoming; warm it up either way.

    Returns (activity, created).
    """
    now = now or timezone.now()
    current = SeckillActivity.objects.filter(title=DEMO_TITLE, is_enabled=True, ends_at__gt=now).first()
    created = current is None
    if created:
        product = Product.objects.get(slug=DEMO_PRODUCT)
        units = min(20, product.stock)
        if units < 1:
            product.stock = 20
            product.save(update_fields=["stock"])
            units = 20
        current = SeckillActivity.objects.create(
            product=product,
            title=DEMO_TITLE,
            price=Decimal("99.00"),
            stock_total=units,
            per_user_limit=1,
            starts_at=now + timedelta(minutes=1),
            ends_at=now + timedelta(hours=2),
            payment_minutes=15,
        )
    services.activity_warm(activity_id=current.pk)
    current.refresh_from_db()
    return current, created

"""Flash-sale data. The database alone enforces the invariants that matter (docs/architecture.md, "Invariants"):

- I1 no oversell: `SeckillActivity.stock_available` is the DB pool of units set aside
  for the sale; a CHECK keeps it between 0 and stock_total and every order takes its
  units with a conditional decrement, so live orders can never exceed stock_total,
  whatever Redis says.
- I3 per-customer limit: `SeckillQuota.units_held` carries the activity's limit in
  the same row and a CHECK keeps units_held <= unit_limit, so a second order over the
  limit fails in the database even if the Redis counters or the lock were lost.
- with stock buckets (bucket_count > 1) the pool is split: the sale row's
  stock_available is the reserve and each SeckillStockBucket row holds one bucket's
  units, each with its own CHECK (>= 0); the rows are a partition of the units not yet
  ordered, so their sum is stock_total minus the live and returned units and the
  database alone still refuses an oversell (seckill/services/order_write.py).
- I4 nothing lost / no duplicate: `SeckillOrder.reservation_id` is unique, so one
  reservation can never become two orders, however often a task is delivered.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

# No database foreign key from the order-side tables to the sale row. InnoDB checks a
# foreign key by taking a shared lock on the parent row; every purchase of a sale
# inserts such children and then decrements the sale row, so two purchases would each
# hold the shared lock and wait for the other's to upgrade to exclusive: a deadlock on
# every burst. Sales are never deleted (PROTECT, enforced by Django) and reconciliation
# checks that every order points at an existing sale.
HOT_ROW_FK = False
MAX_BUCKETS = 16  # seckill/keys.py MAX_BUCKETS


class SeckillActivity(models.Model):
    class Status(models.TextChoices):
        UPCOMING = "upcoming", "Upcoming"
        LIVE = "live", "Live"
        SOLD_OUT = "sold_out", "Sold out"
        ENDED = "ended", "Ended"

    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="seckill_activities")
    title = models.CharField(max_length=200)
    # Each CHECK below has a validator saying the same in words, so the admin's form puts
    # the message next to its field; Django then skips the CHECK's own generic message
    # (full_clean validates a constraint only over fields that passed their validators).
    price = models.DecimalField(
        "sale price",
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"), "The sale price must be more than zero.")],
    )
    stock_total = models.PositiveIntegerField(
        "units for the sale", validators=[MinValueValidator(1, "A sale needs at least one unit to sell.")]
    )
    stock_available = models.PositiveIntegerField(
        "units left (DB)", default=0, editable=False, help_text="Set aside from the product when published."
    )
    per_user_limit = models.PositiveIntegerField(
        "limit per customer",
        default=1,
        validators=[MinValueValidator(1, "Each customer must be allowed at least one unit.")],
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    payment_minutes = models.PositiveIntegerField(
        "payment window (minutes)",
        default=15,
        validators=[MinValueValidator(1, "Customers need at least one minute to pay.")],
    )
    is_enabled = models.BooleanField("enabled", default=True)
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Once the sale has ended and every accepted purchase is written, the units neither
    # sold nor held go back to the product's free stock, once (seckill/services/lifecycle.py
    # activity_return_unsold); orders cancelled or expired later return theirs there too
    # (seckill/services/deadlines.py). stock_total = stock_available + stock_returned + live units.
    returned_at = models.DateTimeField("unsold units returned", null=True, blank=True, editable=False)
    stock_returned = models.PositiveIntegerField(
        "units returned to the product", default=0, editable=False, help_text="After the sale ended."
    )
    # A hot sale's stock split over buckets, each in its own Redis Cluster slot
    # (docs/scale-out.md "Hot-sale buckets"); 1 = one key space, as before buckets.
    bucket_count = models.PositiveSmallIntegerField(
        "stock buckets",
        default=1,
        validators=[
            MinValueValidator(1, "A sale needs at least one stock bucket."),
            MaxValueValidator(MAX_BUCKETS, f"At most {MAX_BUCKETS} stock buckets per sale."),
        ],
        help_text="Split a very hot sale's stock over several Redis Cluster masters; 1 for most sales.",
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "flash sale"
        ordering = ("-starts_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="seckill_ends_after_start",
                violation_error_message="The sale must end after it starts.",
            ),
            models.CheckConstraint(
                condition=Q(stock_total__gte=1),
                name="seckill_stock_total_positive",
                violation_error_message="A sale needs at least one unit to sell.",
            ),
            models.CheckConstraint(
                condition=Q(stock_available__gte=0) & Q(stock_available__lte=F("stock_total")),
                name="seckill_stock_available_in_range",
                violation_error_message="Units left must be between zero and the units for the sale.",
            ),
            models.CheckConstraint(
                condition=Q(stock_total__gte=F("stock_available") + F("stock_returned")),
                name="seckill_returned_within_total",
                violation_error_message="Units returned and units left cannot exceed the units for the sale.",
            ),
            models.CheckConstraint(
                condition=Q(per_user_limit__gte=1),
                name="seckill_limit_positive",
                violation_error_message="Each customer must be allowed at least one unit.",
            ),
            models.CheckConstraint(
                condition=Q(price__gt=0),
                name="seckill_price_positive",
                violation_error_message="The sale price must be more than zero.",
            ),
            models.CheckConstraint(
                condition=Q(bucket_count__gte=1) & Q(bucket_count__lte=MAX_BUCKETS),
                name="seckill_bucket_count_in_range",
                violation_error_message=f"A sale has between 1 and {MAX_BUCKETS} stock buckets.",
            ),
            models.CheckConstraint(
                condition=Q(payment_minutes__gte=1),
                name="seckill_payment_window_positive",
                violation_error_message="Customers need at least one minute to pay.",
            ),
        ]
        indexes = [models.Index(fields=("is_enabled", "starts_at"), name="seckill_enabled_starts_idx")]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("seckill:detail", args=[self.pk])

    @property
    def is_published(self):
        return self.published_at is not None

    def clean(self):
        """Rules staff must follow when setting up a sale; the admin shows each next to its field."""
        errors = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The sale must end after it starts."
        elif self._state.adding and self.ends_at and self.ends_at <= timezone.now():
            # Only a new sale: an existing one may be edited after it ended (disabled, renamed).
            ends = timezone.localtime(self.ends_at)
            errors["ends_at"] = (
                f"This sale would be over before it is saved: it ends {ends:%Y-%m-%d %H:%M}, "
                "which is in the past. Choose an end in the future."
            )
        if not self._state.adding and self.bucket_count:
            before = SeckillActivity.objects.filter(pk=self.pk).values_list("bucket_count", "published_at").first()
            if before is not None and before[1] is not None and before[0] != self.bucket_count:
                errors["bucket_count"] = (
                    f"This sale is already published with {before[0]} stock bucket(s); its units are "
                    "split that way in Redis and the database, so the number of buckets cannot change now."
                )
        product = self.product if self.product_id else None
        if product is not None and self.price is not None and self.price >= product.price:
            errors["price"] = f"The sale price must be below the regular price (€{product.price})."
        if product is not None and not self.is_published and self.stock_total and self.stock_total > product.stock:
            errors["stock_total"] = (
                f"Only {product.stock} units of {product.name} are free; the sale cannot set aside more."
            )
        if product is not None and self.is_enabled and self.starts_at and self.ends_at:
            overlapping = SeckillActivity.objects.filter(
                product=product, is_enabled=True, starts_at__lt=self.ends_at, ends_at__gt=self.starts_at
            ).exclude(pk=self.pk)
            clash = overlapping.first()
            if clash is not None:
                errors["starts_at"] = (
                    f"“{clash.title}” sells the same product from {clash.starts_at:%Y-%m-%d %H:%M} "
                    f"to {clash.ends_at:%Y-%m-%d %H:%M}; enabled sales of one product must not overlap."
                )
        if errors:
            raise ValidationError(errors)

    def has_started(self, now=None):
        return (now or timezone.now()) >= self.starts_at

    def has_ended(self, now=None):
        return (now or timezone.now()) >= self.ends_at

    def status_at(self, now=None, *, remaining=None):
        """upcoming / live / sold_out / ended; `remaining` is the live count (Redis) when known."""
        now = now or timezone.now()
        if not self.is_enabled or now >= self.ends_at:
            return self.Status.ENDED
        if now < self.starts_at:
            return self.Status.UPCOMING
        left = self.stock_available if remaining is None else remaining
        return self.Status.SOLD_OUT if left <= 0 else self.Status.LIVE


class SeckillStockBucket(models.Model):
    """One bucket's share of a bucketed sale's DB pool (SeckillActivity.bucket_count > 1).

    The order writer of bucket i takes its batch's units from row i, and only when the
    row holds too few from the reserve (the sale row) and then the other rows, all in
    its own transaction (seckill/services/order_write.py). Writers of different buckets
    thus update different rows; the CHECK keeps every row >= 0, so the sum of the rows
    and the reserve can never go below zero, which is I1 in the database.
    """

    activity = models.ForeignKey(
        SeckillActivity, on_delete=models.CASCADE, related_name="stock_buckets", db_constraint=HOT_ROW_FK
    )
    index = models.PositiveSmallIntegerField()
    stock_available = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("activity", "index"), name="seckill_stock_bucket_unique"),
            models.CheckConstraint(condition=Q(stock_available__gte=0), name="seckill_stock_bucket_not_negative"),
        ]

    def __str__(self):
        return f"bucket {self.index} of sale {self.activity_id}: {self.stock_available}"


class SeckillOrder(models.Model):
    """Links an order to the sale and the reservation it came from.

    One row per reservation (unique), written in the same transaction as the order, so
    an intent delivered twice to the order writers becomes one order.
    """

    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="seckill")
    activity = models.ForeignKey(
        SeckillActivity, on_delete=models.PROTECT, related_name="orders", db_constraint=HOT_ROW_FK
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    reservation_id = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=("activity", "user"), name="seckill_order_act_user_idx")]
        constraints = [models.CheckConstraint(condition=Q(quantity__gte=1), name="seckill_order_quantity_positive")]

    def __str__(self):
        return f"{self.order_id} for {self.activity_id}"


class SeckillQuota(models.Model):
    """Units of one activity a customer holds in live orders; the DB's own per-customer limit.

    The order writer's batch upsert (seckill/services/order_write.py) adds a batch's
    units per customer in one statement, and the CHECK refuses it if any customer would
    go over the limit; cancelled and expired orders take their units off again.
    """

    activity = models.ForeignKey(
        SeckillActivity, on_delete=models.CASCADE, related_name="quotas", db_constraint=HOT_ROW_FK
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    units_held = models.PositiveIntegerField(default=0)
    unit_limit = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("activity", "user"), name="seckill_quota_unique"),
            models.CheckConstraint(
                condition=Q(units_held__gte=0) & Q(units_held__lte=F("unit_limit")), name="seckill_quota_within_limit"
            ),
        ]

    def __str__(self):
        return f"{self.units_held}/{self.unit_limit} of sale {self.activity_id} for customer {self.user_id}"


class SeckillRefusal(models.Model):
    """An accepted purchase whose order the database refused when the writer came to it.

    Rare by design: Redis checks the same rules first. It happens when Redis was ahead of
    the database (a warm-up after data loss) or a constraint was tightened meanwhile.
    The row is what the customer's order page shows instead of the order, and it makes a
    second delivery of the same intent a no-op (unique reservation and order number).
    """

    activity = models.ForeignKey(
        SeckillActivity, on_delete=models.PROTECT, related_name="refusals", db_constraint=HOT_ROW_FK
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    order_number = models.CharField(max_length=20, unique=True)
    reservation_id = models.CharField(max_length=32, unique=True)
    quantity = models.PositiveIntegerField()
    code = models.CharField(max_length=32, help_text="sold_out, limit_reached or duplicate")
    detail = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"order {self.order_number} refused ({self.code})"

import secrets

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

# Crockford's base32 without I, L, O, U: readable aloud, no look-alike characters.
_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_order_number():
    """`FS-XXXX-XXXX-XXXX`: 60 random bits, so numbers cannot be guessed or enumerated."""
    raw = "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(12))
    return f"FS-{raw[:4]}-{raw[4:8]}-{raw[8:]}"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", "Pending payment"
        PAID = "paid", "Paid"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    class Source(models.TextChoices):
        CHECKOUT = "checkout", "Checkout"
        SECKILL = "seckill", "Flash sale"

    # A live order holds stock; a dead one has given it back.
    LIVE_STATUSES = (Status.PENDING_PAYMENT, Status.PAID)

    number = models.CharField(max_length=20, unique=True, default=new_order_number, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING_PAYMENT)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CHECKOUT)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    version = models.PositiveIntegerField(default=1, editable=False)
    # NULL, not "": orders without a key must not collide in the unique (user, key) index.
    # A flash-sale purchase stores its key as "sale<id>:<key>" (seckill/keys.py), so one
    # client key used in two sales, or in a sale and a checkout, is two purchases.
    idempotency_key = models.CharField(max_length=80, null=True, blank=True, editable=False)  # noqa: DJ001
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Payment deadline.")
    paid_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When it was cancelled or expired.")
    payment_reference = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            # A retried request carrying the same key can never create a second order.
            models.UniqueConstraint(fields=("user", "idempotency_key"), name="order_unique_idempotency_key"),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
        ]
        indexes = [
            models.Index(fields=("status", "expires_at"), name="order_status_expires_idx"),
            models.Index(fields=("user", "created_at"), name="order_user_created_idx"),
        ]

    def __str__(self):
        return self.number

    def get_absolute_url(self):
        return reverse("orders:detail", args=[self.number])

    @property
    def is_live(self):
        return self.status in self.LIVE_STATUSES

    @property
    def can_pay(self):
        return self.status == self.Status.PENDING_PAYMENT

    @property
    def can_cancel(self):
        return self.status == self.Status.PENDING_PAYMENT


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="order_items")
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_item_quantity_positive"),
            models.UniqueConstraint(fields=("order", "product"), name="order_item_unique_product"),
        ]

    def __str__(self):
        return f"{self.quantity} x {self.product}"

    @property
    def line_total(self):
        return self.unit_price * self.quantity


class OrderEmail(models.Model):
    """One e-mail of one kind about one order, and whether it went out.

    The unique (order, kind) row is what makes sending idempotent: the task that sends
    it locks this row, sends, and stamps `sent_at` in one transaction, so a redelivered
    or doubled task finds it stamped and sends nothing (orders/notifications.py).
    """

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", "Order confirmation"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    recipient = models.EmailField(blank=True, help_text="Empty when the customer has no e-mail address.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When it was sent, or skipped for no address.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("order", "kind"), name="order_email_unique_kind")]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.order_id}"

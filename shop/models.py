from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

from shop import images


class Product(models.Model):
    """A thing the shop sells.

    `stock` is the free stock: units neither sold nor set aside for a flash sale. The
    database refuses a negative value on its own (CHECK constraint), so no code path,
    raw SQL included, can take it below zero. `version` grows with every write and is
    what version-checked updates and the admin's edit-conflict check compare.
    """

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0.01)])
    stock = models.IntegerField(default=0, validators=[MinValueValidator(0)])
    version = models.PositiveIntegerField(default=1, editable=False)
    is_active = models.BooleanField("on sale", default=True)
    image = models.ImageField(
        upload_to="products/",
        blank=True,
        validators=[images.validate_upload_size],
        help_text="JPEG, PNG or WebP, up to 5 MB; cropped to 4:3 for the shop's pages.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_not_negative"),
            models.CheckConstraint(condition=Q(price__gt=0), name="product_price_positive"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        """Also writes the image's resized copies the first time the image is seen."""
        super().save(*args, **kwargs)
        if self.image and images.variants_missing(self.image.name):
            images.make_variants(self.image.name)

    def get_absolute_url(self):
        return reverse("shop:product-detail", args=[self.slug])

    @property
    def in_stock(self):
        return self.stock > 0

    @property
    def image_srcset(self):
        """[(url, width)] of the resized copies, or [] when the product has no image."""
        return images.srcset(self.image.name) if self.image else []

    @property
    def image_url(self):
        """The default-width copy, or None."""
        return images.url_of(self.image.name, images.DEFAULT_WIDTH) if self.image else None

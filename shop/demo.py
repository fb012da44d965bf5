"""Demo data for `manage.py seed_demo`: a small catalogue with pictures and two accounts.

Idempotent: products are matched by slug and only created when missing (existing
stock is left alone, so re-running during a demo does not refill what sold); a
product gets its picture (drawn with Pillow, shop/demo_images.py) only when it has
none or its file is gone; the demo accounts get their documented passwords back on
every run.
"""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from shop.demo_images import draw_product_image
from shop.models import Product

DEMO_PRODUCTS = [
    ("aged-rice-wine-1l", "Aged rice wine, 1 l", "25-year aged, from a small cellar. Very limited.", "299.00", 120),
    ("mechanical-keyboard", "Mechanical keyboard", "Hot-swappable switches, aluminium case.", "129.00", 40),
    ("noise-cancelling-headphones", "Noise-cancelling headphones", "30 h battery, USB-C.", "249.00", 25),
    ("espresso-grinder", "Espresso grinder", "Flat burrs, stepless adjustment.", "189.00", 15),
    ("hiking-backpack-40l", "Hiking backpack 40 l", "Waterproof, ventilated back panel.", "89.00", 60),
    ("cast-iron-pan", "Cast-iron pan", "Pre-seasoned, 28 cm.", "45.00", 80),
]

DEMO_ACCOUNTS = [
    # (username, password, is_staff)
    ("staff", "staff-demo-pass", True),
    ("customer", "customer-demo-pass", False),
    ("customer2", "customer2-demo-pass", False),
]


def seed_demo_catalogue():
    created = []
    for slug, name, description, price, stock in DEMO_PRODUCTS:
        _, was_created = Product.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "description": description, "price": Decimal(price), "stock": stock},
        )
        if was_created:
            created.append(slug)
    seed_demo_images()
    return created


def seed_demo_images():
    """Give every demo product a picture; returns the slugs that got one."""
    drawn = []
    for index, (slug, name, *_rest) in enumerate(DEMO_PRODUCTS):
        product = Product.objects.filter(slug=slug).first()
        if product is None or (product.image and default_storage.exists(product.image.name)):
            continue
        product.image.save(f"{slug}.jpg", ContentFile(draw_product_image(name, index)), save=False)
        product.save(update_fields=["image", "updated_at"])
        drawn.append(slug)
    return drawn


def seed_demo_accounts():
    User = get_user_model()
    for username, password, is_staff in DEMO_ACCOUNTS:
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        user.is_staff = user.is_superuser = is_staff
        user.set_password(password)
        user.save()
    return [(u, p, "staff (admin)" if s else "customer") for u, p, s in DEMO_ACCOUNTS]

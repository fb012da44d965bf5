"""Two staff edit one flash sale: the second save is refused in words and changes nothing.

The check is the shop's own optimistic versioning (core/admin_versioning.py) on the
sale's `version` column; docs/operations.md ("What we use for what") says why it was
kept rather than swapped for django-concurrency.
"""

import pytest
from django.test import Client

from seckill.models import SeckillActivity
from seckill.tests.conftest import create_sale
from shop.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _staff_client(user):
    client = Client()
    client.force_login(user)
    return client


def _edit(page, **changes):
    """What the editor's browser posts back: the form as loaded (its hidden version too), with changes."""
    form = page.context["adminform"].form
    activity = form.instance
    data = {
        "title": activity.title,
        "product": activity.product_id,
        "price": str(activity.price),
        "stock_total": activity.stock_total,
        "per_user_limit": activity.per_user_limit,
        "payment_minutes": activity.payment_minutes,
        "bucket_count": activity.bucket_count,
        "starts_at_0": activity.starts_at.strftime("%Y-%m-%d"),
        "starts_at_1": activity.starts_at.strftime("%H:%M:%S"),
        "ends_at_0": activity.ends_at.strftime("%Y-%m-%d"),
        "ends_at_1": activity.ends_at.strftime("%H:%M:%S"),
        "loaded_version": form["loaded_version"].value(),
    }
    if activity.is_enabled:
        data["is_enabled"] = "on"
    data.update(changes)
    return data


def test_the_second_of_two_staff_editing_one_sale_is_refused_and_nothing_changes(staff):
    activity = create_sale(stock=5, starts_in=3600, warm=False, title="Spring sale")
    url = f"/admin/seckill/seckillactivity/{activity.pk}/change/"
    first = _staff_client(staff)
    second = _staff_client(UserFactory(username="staff2", is_staff=True, is_superuser=True))
    first_page, second_page = first.get(url), second.get(url)
    assert first_page.status_code == 200 and second_page.status_code == 200

    assert first.post(url, _edit(first_page, title="Spring sale, 20 % off")).status_code == 302
    saved = SeckillActivity.objects.get(pk=activity.pk)
    assert saved.title == "Spring sale, 20 % off" and saved.version == activity.version + 1

    refused = second.post(url, _edit(second_page, title="Autumn sale", per_user_limit=3))
    assert refused.status_code == 200
    html = refused.content.decode()
    assert "Somebody else changed this flash sale while you were editing it" in html
    assert "Your changes were not saved" in html
    after = SeckillActivity.objects.get(pk=activity.pk)
    assert (after.title, after.per_user_limit, after.version) == (saved.title, saved.per_user_limit, saved.version)

    reopened = second.get(url)  # opening it again shows the current values, and the edit then saves
    assert second.post(url, _edit(reopened, per_user_limit=3)).status_code == 302
    assert SeckillActivity.objects.get(pk=activity.pk).per_user_limit == 3

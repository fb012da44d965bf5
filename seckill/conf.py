"""The flash-sale settings (the SECKILL_* block of config/settings.py), read in one place.

`conf()` returns one frozen object, built on first use and kept for the life of the
process: the purchase path reads several settings per request, and an attribute of a
plain object costs less than Django's settings lookup. Tests that override a SECKILL_*
setting (pytest-django's `settings` fixture, `override_settings`) fire Django's
`setting_changed` signal, which drops the object so the next call sees the new value.
"""

import dataclasses
from functools import cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@dataclasses.dataclass(frozen=True)
class SeckillSettings:
    ack: str
    ack_wait_seconds: float
    writer_eager: bool
    writer_claim_idle_ms: int
    rate_limit_per_customer: int
    rate_limit_per_ip: int
    rate_limit_window_ms: int
    meta_cache_seconds: float
    sold_out_recheck_seconds: float
    warmup_lead_minutes: int
    idempotency_ttl_seconds: int
    reservation_grace_seconds: int
    purchase_token_required: bool
    purchase_token_lead_seconds: int
    purchase_token_max_age_seconds: int
    buyers_per_ip: int


@cache
def conf():
    """The current SECKILL_* settings as one frozen object."""
    names = [field.name for field in dataclasses.fields(SeckillSettings)]
    return SeckillSettings(**{name: getattr(settings, f"SECKILL_{name.upper()}") for name in names})


@receiver(setting_changed)
def _forget(setting, **kwargs):
    if setting.startswith("SECKILL_"):
        conf.cache_clear()

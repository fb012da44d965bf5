"""The answers a flash-sale purchase can get besides success (the API's error codes, README.md "API in one glance")."""

from core.errors import Busy, InvalidInput, NotFound, ServiceUnavailable, ShopError

__all__ = [
    "Busy",
    "Ended",
    "InvalidInput",
    "LimitReached",
    "NotFound",
    "NotStarted",
    "RateLimited",
    "SoldOut",
    "Unavailable",
]


class SoldOut(ShopError):
    code = "sold_out"
    status = 409
    default_detail = "Sold out. Units from unpaid orders may come back; try again in a few minutes."


class LimitReached(ShopError):
    code = "limit_reached"
    status = 409
    default_detail = "You already hold the maximum number of units for this sale."


class NotStarted(ShopError):
    code = "not_started"
    status = 409
    default_detail = "This sale has not started yet."


class Ended(ShopError):
    code = "ended"
    status = 409
    default_detail = "This sale has ended."


class RateLimited(ShopError):
    code = "rate_limited"
    status = 429
    default_detail = "Too many attempts in a short time; wait a second and try again."


class Unavailable(ServiceUnavailable):
    default_detail = "The sale is being prepared or recovering; please try again in a moment."

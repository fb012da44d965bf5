"""Errors a customer can cause, each with a stable machine-readable code.

Services raise these; the API turns them into `{code, detail}` with the status below
and the pages turn them into a message. Anything else is a bug and stays a 500.
"""


class ShopError(Exception):
    code = "error"
    status = 400
    default_detail = "The request could not be completed."

    def __init__(self, detail=None, **extra):
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)


class NotFound(ShopError):
    code = "not_found"
    status = 404
    default_detail = "Not found."


class InvalidInput(ShopError):
    code = "invalid"
    status = 400
    default_detail = "The request is not valid."


class InsufficientStock(ShopError):
    code = "insufficient_stock"
    status = 409
    default_detail = "Not enough stock left for this product."


class ProductUnavailable(ShopError):
    code = "product_unavailable"
    status = 409
    default_detail = "This product is not on sale."


class Busy(ShopError):
    code = "busy"
    status = 429
    default_detail = "Too many people are buying this right now; please try again."


class InvalidState(ShopError):
    code = "invalid_state"
    status = 409
    default_detail = "The order cannot change from its current state."


class ServiceUnavailable(ShopError):
    code = "unavailable"
    status = 503
    default_detail = "The shop cannot take this request right now; please try again shortly."

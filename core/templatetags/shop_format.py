"""Template filters every page shares: `{% load shop_format %}`.

`money` formats an amount the one way the shop shows prices, "€6,450.00": two
decimals and a thousands separator, whatever the locale settings say, so a price on
a page, in the cart and in an e-mail reads the same.
"""

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


def format_money(value):
    """ "€1,234.50" for a number; "" for None or something that is not a number."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    return f"€{amount:,.2f}"


register.filter("money", format_money)

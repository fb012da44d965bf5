"""A stand-in for the payment gateway: the one part of the system that is outside the shop.

It records charges in memory for tests; a real deployment would swap in a client for
the provider behind the same two calls.
"""

import secrets
from dataclasses import dataclass
from decimal import Decimal


class PaymentDeclined(Exception):
    pass


@dataclass(frozen=True)
class Charge:
    reference: str
    amount: Decimal


class SimulatedGateway:
    def __init__(self):
        self.refunded = []

    def charge(self, *, amount, description):
        if amount < 0:
            raise PaymentDeclined("Negative amount.")
        return Charge(reference=f"sim_{secrets.token_hex(8)}", amount=amount)

    def refund(self, charge):
        self.refunded.append(charge.reference)


gateway = SimulatedGateway()

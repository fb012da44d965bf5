from django.dispatch import Signal

# Sent inside the transaction that cancels or expires an order, after its status
# changed and before commit. Receivers that keep stock elsewhere (the flash-sale pool)
# give the units back there; the transaction makes "status changed" and "stock
# returned" one fact. Arguments: order, reason ("cancelled" or "expired").
order_released = Signal()

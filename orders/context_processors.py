from orders.cart import SESSION_KEY


def cart_summary(request):
    """Item count for the header, read straight from the session (no query)."""
    session = getattr(request, "session", None)
    if session is None:
        return {"cart_count": 0}
    return {"cart_count": sum(int(v) for v in session.get(SESSION_KEY, {}).values())}

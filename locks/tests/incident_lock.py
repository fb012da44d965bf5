"""The seed incident's lock, kept only to show what the real one prevents. Never use it.

    setIfAbsent(key, "val", 10, SECONDS) ... finally { delete(key) }

Every holder writes the same value and the release is a plain DEL, so a holder whose
lease ran out deletes whichever lock is there now, including the next holder's.
"""


class IncidentLock:
    def __init__(self, client, key, ttl):
        self.client = client
        self.key = key
        self.ttl = ttl

    def acquire(self):
        return bool(self.client.set(self.key, "val", nx=True, px=round(self.ttl * 1000)))

    def release(self):
        self.client.delete(self.key)

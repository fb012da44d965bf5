"""Run a function in many threads released at the same instant, like Java's CountDownLatch.

Each thread waits on one barrier, so all of them hit the code under test together;
each closes its own DB connections when done, so the test leaves none behind.
"""

import threading

from django.db import connections


def run_concurrently(func, count, timeout=60):
    """Call func(i) for i in range(count), all released together. Returns results or exceptions."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(index):
        try:
            barrier.wait(timeout=timeout)
            results[index] = func(index)
        except BaseException as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a worker thread did not finish"
    return results

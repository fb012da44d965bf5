"""`make bench`: the purchase path against the ceiling and the DB-only strategies (docs/benchmarks.md)."""

"""Endpoints that exist only for `make bench` (mounted under /bench/ when BENCH_ENDPOINTS=1).

They are the yardsticks the real purchase path is compared with: a do-nothing view
(the ceiling), two database-only purchase strategies and the naive code of the
incident told in docs/architecture.md. None of them is ever mounted in production
(config/settings.py, config/urls.py).
"""

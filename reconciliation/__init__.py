"""Reconciliation (docs/reconciliation.md): find what the real-time path missed, record it
for staff, repair what is safe to repair.

- checks/: the checks, one module per domain (catalogue, orders, seckill, drift);
- runner.py: runs them all under one lock and records the run;
- models.py, admin.py: what staff see (runs and discrepancies);
- tasks.py: the nightly run and the run after each sale (scheduled in config/beat.py);
- management/commands/reconcile.py: `manage.py reconcile`, for staff and cron.
"""

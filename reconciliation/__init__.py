"""Post-sale reconciliation (DESIGN.md §6): find what the real-time path missed, record it
for staff, repair what is safe to repair.

checks.py holds the flash-sale checks (the catalogue's and the orders' live in
reconciliation/checks/catalogue.py and reconciliation/checks/orders.py), runner.py runs them all under one
lock and records the run, models.py is what staff see in the admin. Nothing is imported
here, so seckill/models.py can import the models without a cycle.
"""

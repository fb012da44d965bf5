"""FencingToken now belongs to the locks app, ReconciliationRun and Discrepancy to the
reconciliation app. Their tables were renamed by those apps' first migrations; this one
only drops the models from seckill's migration state and touches no table."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("seckill", "0003_idempotency_key_per_sale"),
        ("locks", "0001_initial"),
        ("reconciliation", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Discrepancy"),
                migrations.DeleteModel(name="ReconciliationRun"),
                migrations.DeleteModel(name="FencingToken"),
            ],
        ),
    ]

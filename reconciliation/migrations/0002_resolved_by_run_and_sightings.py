"""Discrepancies resolved by a run, and every run that saw each one.

Existing rows get the two sightings they recorded (the first run and the latest);
the runs in between were not kept before this migration.
"""

import django.db.models.deletion
from django.db import migrations, models


def _backfill_sightings(apps, schema_editor):
    Discrepancy = apps.get_model("reconciliation", "Discrepancy")
    through = Discrepancy.seen_by.through
    rows = []
    for pk, run_id, last_run_id in Discrepancy.objects.values_list("pk", "run_id", "last_run_id").iterator():
        rows.extend(through(discrepancy_id=pk, reconciliationrun_id=r) for r in {run_id, last_run_id})
    through.objects.bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='discrepancy',
            name='resolved_by_run',
            field=models.ForeignKey(blank=True, help_text='The run that no longer found it, or repaired it.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='resolved_discrepancies', to='reconciliation.reconciliationrun'),
        ),
        migrations.AddField(
            model_name='discrepancy',
            name='seen_by',
            field=models.ManyToManyField(blank=True, help_text='Every run that found it.', related_name='seen_discrepancies', to='reconciliation.reconciliationrun'),
        ),
        migrations.RunPython(_backfill_sightings, migrations.RunPython.noop),
    ]

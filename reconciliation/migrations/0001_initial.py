"""ReconciliationRun and Discrepancy move here from the seckill app, rows and all.

The tables are renamed (seckill_* to reconciliation_*), never dropped and re-created,
on a database migrated before the move and on a new one alike (seckill's 0002 has just
created them there). seckill's 0004 removes the two models from seckill's state only.
Content types follow, so staff permissions on the models are kept.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

_TABLES = [("seckill_reconciliationrun", "reconciliation_reconciliationrun"), ("seckill_discrepancy", "reconciliation_discrepancy")]
_MODELS = ("reconciliationrun", "discrepancy")


def _rename(pairs):
    return "RENAME TABLE " + ", ".join(f"{old} TO {new}" for old, new in pairs)


def _content_types(old, new):
    names = ", ".join(f"'{m}'" for m in _MODELS)
    return f"UPDATE django_content_type SET app_label = '{new}' WHERE app_label = '{old}' AND model IN ({names})"


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("seckill", "0003_idempotency_key_per_sale"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ReconciliationRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('started_at', models.DateTimeField(auto_now_add=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('status', models.CharField(choices=[('running', 'Running'), ('clean', 'Clean'), ('found', 'Discrepancies found'), ('failed', 'Failed')], default='running', max_length=10)),
                        ('triggered_by', models.CharField(help_text='command (with the OS user), beat:nightly, ...', max_length=100)),
                        ('slot', models.CharField(blank=True, max_length=64, null=True, unique=True)),
                        ('scope', models.JSONField(blank=True, default=dict, help_text='Sales and start date the run was limited to.')),
                        ('fix', models.BooleanField(default=False, verbose_name='repair requested')),
                        ('found', models.PositiveIntegerField(default=0)),
                        ('counts', models.JSONField(blank=True, default=dict, help_text='Discrepancies found, by kind.')),
                        ('repairs', models.JSONField(blank=True, default=list)),
                        ('notes', models.JSONField(blank=True, default=list)),
                        ('error', models.TextField(blank=True)),
                    ],
                    options={
                        'verbose_name': 'reconciliation run',
                        'ordering': ('-started_at', '-id'),
                    },
                ),
                migrations.CreateModel(
                    name='Discrepancy',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('seen_count', models.PositiveIntegerField(default=1, help_text='Runs that found it.')),
                        ('kind', models.CharField(choices=[('duplicate_order', 'Duplicate order'), ('oversold', 'Oversold'), ('over_limit', 'Over the per-customer limit'), ('stock_drift', 'Stock drift'), ('stranded_reservation', 'Stranded reservation'), ('negative_stock', 'Negative stock')], max_length=24)),
                        ('order_numbers', models.JSONField(blank=True, default=list)),
                        ('summary', models.CharField(max_length=255)),
                        ('detail', models.JSONField(blank=True, default=dict)),
                        ('fingerprint', models.CharField(max_length=40, unique=True)),
                        ('state', models.CharField(choices=[('open', 'Open'), ('resolved', 'Resolved')], default='open', max_length=10)),
                        ('resolved_at', models.DateTimeField(blank=True, null=True)),
                        ('resolution', models.CharField(blank=True, max_length=255)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('activity', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='seckill.seckillactivity')),
                        ('resolved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('last_run', models.ForeignKey(help_text='The latest run that saw it.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='reconciliation.reconciliationrun')),
                        ('run', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='discrepancies', to='reconciliation.reconciliationrun')),
                    ],
                    options={
                        'verbose_name_plural': 'discrepancies',
                        'ordering': ('-id',),
                        'indexes': [models.Index(fields=['state', 'kind'], name='seckill_discrepancy_state_idx')],
                    },
                ),
            ],
            database_operations=[
                migrations.RunSQL(_rename(_TABLES), reverse_sql=_rename([(new, old) for old, new in _TABLES])),
            ],
        ),
        migrations.RunSQL(_content_types("seckill", "reconciliation"), reverse_sql=_content_types("reconciliation", "seckill")),
    ]

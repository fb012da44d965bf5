"""FencingToken moves here from the seckill app, rows and all.

On a database migrated before the move the table is seckill_fencingtoken: it is renamed,
never dropped and re-created. On a new database seckill's first migration has just
created it under that name, so the same rename applies. The model's state moves in
this migration and seckill's 0004, which removes it from seckill's state only.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("seckill", "0003_idempotency_key_per_sale"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="FencingToken",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("resource", models.CharField(max_length=255, unique=True)),
                        ("highest_token", models.BigIntegerField(default=0)),
                    ],
                    options={"verbose_name": "fencing token"},
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "RENAME TABLE seckill_fencingtoken TO locks_fencingtoken",
                    reverse_sql="RENAME TABLE locks_fencingtoken TO seckill_fencingtoken",
                ),
            ],
        ),
        migrations.RunSQL(
            "UPDATE django_content_type SET app_label = 'locks' WHERE app_label = 'seckill' AND model = 'fencingtoken'",
            reverse_sql=(
                "UPDATE django_content_type SET app_label = 'seckill' WHERE app_label = 'locks' AND model = 'fencingtoken'"
            ),
        ),
    ]

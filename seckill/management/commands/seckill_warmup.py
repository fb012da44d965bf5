from django.core.management.base import BaseCommand, CommandError

from core.errors import ShopError
from seckill import services, stock
from seckill.models import SeckillActivity


class Command(BaseCommand):
    help = (
        "Publish a flash sale if needed (set its stock aside) and load its Redis state from the DB. "
        "Without --activity: every enabled sale starting within SECKILL_WARMUP_LEAD_MINUTES or live. "
        "Idempotent and safe during a sale."
    )

    def add_arguments(self, parser):
        parser.add_argument("--activity", type=int, help="ID of one sale to warm up.")

    def handle(self, *args, activity=None, **options):
        if activity is not None:
            if not SeckillActivity.objects.filter(pk=activity).exists():
                raise CommandError(f"No flash sale with id {activity}.")
            ids = [activity]
        else:
            ids = list(services.activities_due_for_warmup().values_list("pk", flat=True))
        if not ids:
            self.stdout.write("No sale is due for warm-up.")
        for activity_id in ids:
            try:
                result = services.activity_warm(activity_id=activity_id)
            except ShopError as exc:
                raise CommandError(f"Sale {activity_id}: {exc.detail}") from exc
            left = stock.remaining(activity_id)
            self.stdout.write(
                f"Sale {activity_id}: published={'yes' if result['published'] else 'already'} "
                f"loaded={'yes' if result['loaded'] else 'already in Redis'} remaining={left}"
            )

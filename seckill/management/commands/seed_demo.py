from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from seckill.demo import seed_demo_sale
from shop.demo import seed_demo_accounts, seed_demo_catalogue


class Command(BaseCommand):
    help = "Create demo products, accounts and a flash sale (idempotent) and print the demo logins."

    def handle(self, *args, **options):
        with transaction.atomic():
            created = seed_demo_catalogue()
            accounts = seed_demo_accounts()
        sale, sale_created = seed_demo_sale()
        self.stdout.write(f"Products: {len(created)} created" + (f" ({', '.join(created)})" if created else ""))
        starts = timezone.localtime(sale.starts_at)
        self.stdout.write(
            f"Flash sale: “{sale.title}” {'created' if sale_created else 'already set up'}, "
            f"{sale.stock_total} units at €{sale.price}, starts {starts:%H:%M:%S %Z} (/sales/{sale.pk}/)"
        )
        self.stdout.write("Demo logins:")
        for username, password, role in accounts:
            self.stdout.write(f"  {username:<10} / {password:<22} {role}")

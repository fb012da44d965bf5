from django.core.management.base import BaseCommand
from django.db import transaction

from shop.demo import seed_demo_accounts, seed_demo_catalogue


class Command(BaseCommand):
    help = "Create demo products and accounts (idempotent) and print the demo logins."

    def handle(self, *args, **options):
        with transaction.atomic():
            created = seed_demo_catalogue()
            accounts = seed_demo_accounts()
        self.stdout.write(f"Products: {len(created)} created" + (f" ({', '.join(created)})" if created else ""))
        self.stdout.write("Demo logins:")
        for username, password, role in accounts:
            self.stdout.write(f"  {username:<10} / {password:<22} {role}")

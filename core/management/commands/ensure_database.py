import MySQLdb
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the configured MariaDB/MySQL database (utf8mb4) if it does not exist yet."

    def handle(self, *args, **options):
        db = settings.DATABASES["default"]
        params = {"host": db["HOST"] or "127.0.0.1", "user": db["USER"], "passwd": db["PASSWORD"] or ""}
        if db.get("PORT"):
            params["port"] = int(db["PORT"])
        name = db["NAME"]
        if not name.replace("_", "").isalnum():
            raise CommandError(f"Refusing an unusual database name: {name!r}")
        try:
            conn = MySQLdb.connect(**params, connect_timeout=5)
        except MySQLdb.OperationalError as exc:
            raise CommandError(f"Cannot connect to MariaDB/MySQL at {params['host']}: {exc.args[-1]}") from exc
        try:
            conn.cursor().execute(
                f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        finally:
            conn.close()
        self.stdout.write(f"Database {name}: ready")

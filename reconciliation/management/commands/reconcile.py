"""`manage.py reconcile`: the reconciliation runner, for staff and cron (docs/reconciliation.md).

Exit status: 0 clean, 1 discrepancies found, 2 error (bad arguments, another run in
progress, a check that could not run).
"""

import getpass
import json
import sys
from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from reconciliation import runner
from seckill.models import SeckillActivity

CLEAN, FOUND, ERROR = 0, 1, 2


def parse_since(value):
    """A date (midnight, local time) or an ISO datetime; naive values are local time."""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since: {value!r} is not a date (YYYY-MM-DD) or datetime.", returncode=ERROR)
        parsed = datetime.combine(day, time.min)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def as_json(outcome):
    """The contract's shape, {run_id, discrepancies: [{kind, activity_id?, order_numbers?,
    detail}]}, plus the run's status, counts, repairs and notes."""
    items = []
    for finding in outcome.findings:
        item = {"kind": finding.kind}
        if finding.activity_id is not None:
            item["activity_id"] = finding.activity_id
        if finding.order_numbers:
            item["order_numbers"] = list(finding.order_numbers)
        item["detail"] = finding.detail
        item["summary"] = finding.summary
        recorded = outcome.discrepancies.get(finding.fingerprint)
        if recorded is not None:
            item["id"] = recorded.pk
            item["state"] = recorded.state
        items.append(item)
    return {
        "run_id": outcome.run.pk if outcome.run else None,
        "status": outcome.status,
        "dry_run": outcome.dry_run,
        "counts": outcome.counts,
        "discrepancies": items,
        "repairs": outcome.repairs,
        "notes": outcome.notes,
        "errors": outcome.errors,
        "elapsed_s": round(outcome.elapsed_s, 3),
    }


def _orders_cell(numbers, width=40):
    if not numbers:
        return "-"
    shown = []
    for number in numbers:
        if len(", ".join([*shown, number])) > width - 10 and shown:
            return ", ".join(shown) + f" (+{len(numbers) - len(shown)})"
        shown.append(number)
    return ", ".join(shown)


def _repair_line(repair):
    sale = f"sale {repair['activity_id']}"
    if repair["action"] == "none":
        return f"{sale}: not repaired: {repair['reason']}"
    if repair.get("planned"):
        verb = {"release_stranded": "would give back its stranded reservations", "resync_redis": "would re-sync Redis"}
        return f"{sale}: {verb[repair['action']]}"
    if repair["action"] == "release_stranded":
        done = f"gave back {len(repair['reservation_ids'])} stranded reservation(s)"
    else:
        done = f"re-synced Redis remaining {repair['remaining_before']} -> {repair['remaining_after']}"
    holds = "conservation holds" if repair.get("conservation_holds") else "conservation still off, see the findings"
    return f"{sale}: {done}; {holds}"


class Command(BaseCommand):
    help = (
        "Reconcile orders, the database and Redis after a sale: duplicate orders, oversold sales, customers "
        "over their limit, stock drift, stranded reservations, negative stock. Exit 0 clean, 1 found, 2 error."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--activity",
            type=int,
            action="append",
            dest="activity_ids",
            metavar="ID",
            help="Only this sale (repeatable).",
        )
        parser.add_argument(
            "--since", help="Only sales running on or after DATE (YYYY-MM-DD or ISO), and checkout orders since then."
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--fix", action="store_true", help="Give stranded units back to Redis, re-sync drifted Redis counters."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Record nothing and change nothing (with --fix: list the repairs)."
        )

    def handle(self, *args, activity_ids=None, since=None, fix=False, dry_run=False, **options):
        self.as_json = options["json"]
        try:
            since = parse_since(since) if since else None
            if activity_ids:
                known = set(SeckillActivity.objects.filter(pk__in=activity_ids).values_list("pk", flat=True))
                unknown = sorted(set(activity_ids) - known)
                if unknown:
                    raise CommandError(f"No flash sale with id {', '.join(map(str, unknown))}.", returncode=ERROR)
            outcome = runner.reconcile(
                activity_ids=activity_ids,
                since=since,
                fix=fix,
                dry_run=dry_run,
                triggered_by=f"command ({_os_user()})",
                progress=self._progress_reporter(options["verbosity"]),
            )
        except CommandError as exc:
            self._fail(str(exc))
        except runner.ReconciliationBusy as exc:
            self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure is exit 2 with its cause; the run row records it
            self._fail(f"reconciliation failed: {type(exc).__name__}: {exc}")

        if self.as_json:
            self.stdout.write(json.dumps(as_json(outcome), indent=2, default=str))
        else:
            self._write_table(outcome)
        code = ERROR if outcome.errors else FOUND if outcome.findings else CLEAN
        if code != CLEAN:
            sys.exit(code)

    def _fail(self, message):
        if self.as_json:
            self.stdout.write(json.dumps({"run_id": None, "discrepancies": [], "error": message}))
        raise CommandError(message, returncode=ERROR)

    def _progress_reporter(self, verbosity):
        """Progress on stderr (stdout stays clean for --json): a line that updates in place
        on a terminal, a line per check at -v 2 otherwise."""
        interactive = hasattr(self.stderr, "isatty") and self.stderr.isatty()
        if not interactive and verbosity < 2:
            return None

        def report(done, total, label, elapsed):
            text = f"[{done}/{total}] {label} ({elapsed:.1f} s)"
            if interactive:
                self.stderr.write(f"\r{text:<60}", ending="\n" if done == total else "")
                self.stderr.flush()
            else:
                self.stderr.write(text)

        return report

    def _write_table(self, outcome):
        head = "Dry run (nothing recorded)" if outcome.dry_run else f"Reconciliation run {outcome.run.pk}"
        if not outcome.findings:
            self.stdout.write(f"{head}: clean ({outcome.elapsed_s:.2f} s).")
        else:
            self.stdout.write(f"{head}: {len(outcome.findings)} discrepancies ({outcome.elapsed_s:.2f} s).")
            self.stdout.write("")
            rows = [("KIND", "SALE", "ORDERS", "SUMMARY")]
            rows += [
                (f.kind, "-" if f.activity_id is None else str(f.activity_id), _orders_cell(f.order_numbers), f.summary)
                for f in outcome.findings
            ]
            widths = [max(len(row[i]) for row in rows) for i in range(3)]
            for row in rows:
                cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
                self.stdout.write("  ".join([*cells, row[3]]))
        for title, lines in (
            ("Repairs", [_repair_line(r) for r in outcome.repairs]),
            ("Notes", outcome.notes),
            ("Errors", outcome.errors),
        ):
            if lines:
                self.stdout.write(f"\n{title}:")
                for line in lines:
                    self.stdout.write(f"  {line}")
        if outcome.run is not None and outcome.findings:
            url = reverse("admin:reconciliation_discrepancy_changelist")
            self.stdout.write(f"\nIn the admin: {url}?last_run__id__exact={outcome.run.pk}")


def _os_user():
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name (a container without passwd entry) is not an error
        return "unknown"

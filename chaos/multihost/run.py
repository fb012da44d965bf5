"""`make cluster-test`: one bucketed sale on 3 web hosts, 2 writer hosts and a 3+3 Redis Cluster,
with a master SIGKILLed, a web host cut off and a writer SIGSTOPped while it sells.

    .venv/bin/python chaos/multihost/run.py [--stock N] [--buckets B] [--customers N] [--seed S]

Needs root (network namespaces) and the machine's MariaDB and RabbitMQ; starts and stops
everything else itself: the hosts (chaos/multihost/net.py), the cluster on the bridge's
address (scripts/redis_cluster.sh), the shop's processes (chaos/multihost/hosts.py), a
load generator per web host (chaos/multihost/buyers.py). Afterwards: the streams drained,
the database checked (chaos/multihost/checks.py), `manage.py reconcile` run on a host.
Writes chaos/results/multihost-latest.json; exit status 0 only when every check holds.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from chaos.multihost import hosts as hosts_mod  # noqa: E402
from chaos.multihost import net  # noqa: E402
from chaos.multihost.faults import Faults, sale_slots, sold  # noqa: E402

RESULTS = ROOT / "chaos" / "results" / "multihost-latest.json"
WEB_HOSTS = ["web1", "web2", "web3"]


def configure_django():
    """This process (the root namespace) sees the same database and cluster as the hosts."""
    env = hosts_mod.shop_env(os.environ)
    env["DATABASE_URL"] = f"mysql://root@127.0.0.1:3306/{hosts_mod.DB_NAME}"
    env["CELERY_BROKER_URL"] = f"amqp://guest:guest@127.0.0.1:5672/{hosts_mod.VHOST}"
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("ensure_database", verbosity=0)
    call_command("migrate", verbosity=0, interactive=False)


def run_buyers(workdir, activity, slices, *, run_id, attempts, elsewhere, threads, start_delay=2.0, timeout=180):
    """One buyers.py process per web host, each with its slice; returns their results."""
    start_at = time.time() + start_delay
    procs = []
    for i, (host, customers) in enumerate(zip(WEB_HOSTS, slices, strict=True)):
        order = WEB_HOSTS[i:] + WEB_HOSTS[:i]
        plan = {
            "run": run_id,
            "hosts": [f"http://{net.address(h)}:{hosts_mod.WEB_PORT}" for h in order],
            "path": f"/api/seckill/activities/{activity.pk}/purchase/",
            "customers": customers,
            "attempts": attempts,
            "elsewhere": elsewhere,
            "threads": threads,
            "seed": i,
            "start_at": start_at,
            "deadline": start_at + timeout,
        }
        plan_path, out_path = workdir / f"plan-{run_id}-{host}.json", workdir / f"buyers-{run_id}-{host}.json"
        plan_path.write_text(json.dumps(plan))
        argv = [sys.executable, str(ROOT / "chaos" / "multihost" / "buyers.py"), str(plan_path), str(out_path)]
        procs.append((host, subprocess.Popen(argv), out_path))  # noqa: S603
    return start_at, procs


def collect(procs, timeout=240):
    results = {}
    for host, proc, out_path in procs:
        proc.wait(timeout)
        results[host] = json.loads(out_path.read_text())
    return results


def drain(activity_id, timeout=90):
    from seckill import intents

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if intents.lag(activity_id).waiting == 0:
                return True
        except Exception:  # noqa: BLE001, S110 - a node still rejoining: ask again
            pass
        time.sleep(0.2)
    return False


def reconcile_on_host(activity_id, host="wr2"):
    env = hosts_mod.shop_env(os.environ)
    argv = [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "reconcile", "--activity", str(activity_id), "--json"]
    done = subprocess.run(net.in_host(host, argv), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # noqa: S603
    try:
        body = json.loads(done.stdout)
    except ValueError:
        body = {"error": done.stderr[-2000:]}
    return done.returncode, body


def cluster_shape():
    """Masters, replicas and failed nodes as the cluster sees itself at the end."""
    port = str(hosts_mod.REDIS_PORTS[1])
    listing = subprocess.run(["redis-cli", "-h", net.HUB, "-p", port, "cluster", "nodes"],  # noqa: S603, S607
                             capture_output=True, text=True, timeout=10).stdout  # fmt: skip
    flags = [line.split()[2] for line in listing.splitlines() if line.strip()]
    return {"masters": sum("master" in f for f in flags), "replicas": sum("slave" in f for f in flags),
            "failed": sum("fail" in f.split(",") for f in flags)}  # fmt: skip


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="independent runs, each with fresh hosts and cluster")
    parser.add_argument("--stock", type=int, default=1500)
    parser.add_argument("--buckets", type=int, default=3)
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--customers", type=int, default=1200, help="split evenly over the 3 web hosts")
    parser.add_argument("--threads", type=int, default=16, help="per load generator")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--out", help=argparse.SUPPRESS)  # one run's report, for the parent of --runs N
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    problems = net.check_can_build()
    if problems:
        print("make cluster-test cannot run here:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if args.runs == 1:
        report = one_run(args)
        (Path(args.out) if args.out else RESULTS).write_text(json.dumps(report, indent=1, default=str) + "\n")
        summary(report)
        return 0 if not report["violations"] else 1
    # Several runs: each in a process of its own, so no client state (a Redis Cluster
    # client's slot map, a DB connection) outlives the cluster it was made for.
    reports = []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, args.runs + 1):
        out = ROOT / "var" / "multihost" / f"{stamp}-run{n}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        child = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("runs", "out", "no_faults")]
        child += ["--no-faults"] if args.no_faults else []
        print(f"\n=== run {n} of {args.runs}", flush=True)
        subprocess.run([sys.executable, __file__, *child, "--out", str(out)], check=False)  # noqa: S603
        reports.append(json.loads(out.read_text()) if out.exists() else {"violations": ["the run crashed"]})
    violations = sum(len(r["violations"]) for r in reports)
    lost = sum(r.get("answers", {}).get("lost_acknowledgements", 0) for r in reports)
    RESULTS.write_text(json.dumps({"runs": reports, "violations": violations, "lost_acknowledgements": lost},
                                  indent=1, default=str) + "\n")  # fmt: skip
    print(f"\ncluster-test: {violations} violation(s), {lost} lost acknowledgement(s) in {args.runs} run(s)")
    print(f"details: {RESULTS.relative_to(ROOT)}")
    return 0 if violations == 0 else 1


def one_run(args):
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = ROOT / "var" / "multihost" / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    network, hosts = net.Network(), None
    report = {"started": stamp, "settings": vars(args), "violations": []}
    try:
        network.up()
        print(f"hosts up on {net.PREFIX}.0/24: " + ", ".join(f"{h} {net.address(h)}" for h in net.HOSTS))
        print(hosts_mod.cluster_script("start").stdout.strip())
        report["rabbitmq_vhost"] = hosts_mod.VHOST if hosts_mod.ensure_vhost() else "/"
        configure_django()
        hosts = hosts_mod.Hosts(workdir, os.environ)
        sell(args, stamp, workdir, network, hosts, report)
    finally:
        if hosts is not None:
            hosts.close()
        hosts_mod.cluster_script("stop", check=False)
        network.down()
    report["finished"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return report


def sell(args, stamp, workdir, network, hosts, report):
    """The sale under its faults, then the settle and every check; fills `report`."""
    from chaos.multihost import checks
    from chaos.run import customers as make_customers
    from chaos.scenarios.harness import new_sale  # earlier runs' sales leave the writers' window

    people = make_customers(args.customers)[: args.customers]
    activity = new_sale(units=args.stock, bucket_count=args.buckets, limit=args.limit)
    report["sale"] = {"id": activity.pk, "stock": args.stock, "buckets": args.buckets, "limit": args.limit,
                      "slots": {str(k): v for k, v in sale_slots(activity).items()}}  # fmt: skip
    for host in WEB_HOSTS:
        hosts.start_web(host)
    for host in ("wr1", "wr2"):
        hosts.start_writer(host)
    hosts.start_ops("wr2", workdir)
    hosts.wait_webs()
    slices = [[list(c) for c in people[i :: len(WEB_HOSTS)]] for i in range(len(WEB_HOSTS))]
    start_at, procs = run_buyers(workdir, activity, slices, run_id=f"{stamp}-0", attempts=args.limit + 1,
                                 elsewhere=[args.limit], threads=args.threads)  # fmt: skip
    print(f"sale {activity.pk}: {args.stock} units in {args.buckets} buckets, limit {args.limit}, "
          f"{args.customers} customers x {args.limit + 1} purchases over {len(WEB_HOSTS)} web hosts")  # fmt: skip
    faults = Faults(network, hosts, activity, start_at)
    fault_thread = None
    if not args.no_faults:
        fault_thread = threading.Thread(target=faults.run, daemon=True)
        fault_thread.start()
    buyers = collect(procs)
    faults.done.set()
    if fault_thread:
        fault_thread.join(30)
    faults.join()
    faults.log("buyers finished", sold=sold(activity.pk))
    fired = {e["event"] for e in faults.events}
    for wanted in ("Redis master SIGKILLed", "web host cut off", "writer stopped (SIGSTOP)"):
        if not args.no_faults and wanted not in fired:
            report["violations"].append(f"the fault '{wanted}' did not fire before the sale ended")
    if not drain(activity.pk):
        report["violations"].append("the writers did not drain the sale's intents within 90 s")
    faults.log("intents drained")
    finals = [f for b in buyers.values() for f in b["finals"]]
    answers_by_code = {h: b["answers"] for h, b in buyers.items()}
    mop_rounds = mop_up(workdir, activity, people, finals, answers_by_code, stamp, args)
    db_found, db_stats = checks.database_violations(activity.pk)
    answer_found, answer_stats = checks.answer_violations(activity.pk, finals)
    code, reconciliation = reconcile_on_host(activity.pk)
    if code != 0:
        report["violations"].append(f"manage.py reconcile exit {code}: {reconciliation.get('discrepancies')}")
    report.update(
        events=faults.events,
        violations=report["violations"] + db_found + answer_found + checks.server_errors(answers_by_code),
        database=db_stats,
        answers=answer_stats,
        answers_by_code=answers_by_code,
        buyers_elapsed_s={h: b["elapsed_s"] for h, b in buyers.items()},
        timeline={h: b["timeline"] for h, b in buyers.items()},
        mop_up_rounds=mop_rounds,
        reconcile={"exit": code, "status": reconciliation.get("status"),
                   "discrepancies": reconciliation.get("discrepancies"), "error": reconciliation.get("error")},
        cluster_after=cluster_shape(),
    )  # fmt: skip


def mop_up(workdir, activity, people, finals, answers_by_code, stamp, args, rounds=3):
    """Units that came back after the buyers stopped (a refusal, a stranded reservation given back)
    are offered to customers below their limit, through web1, so I2 (all units sell) can be
    checked. Returns the rounds it took (0: none needed)."""
    from seckill.models import SeckillQuota

    for round_ in range(1, rounds + 1):
        if sold(activity.pk) >= activity.stock_total:
            return round_ - 1
        held = dict(SeckillQuota.objects.filter(activity_id=activity.pk).values_list("user_id", "units_held"))
        fresh = [list(c) for c in people if held.get(c[0], 0) < activity.per_user_limit]
        _, procs = run_buyers(workdir, activity, [fresh, [], []], run_id=f"{stamp}-{round_}", attempts=1,
                              elsewhere=[], threads=args.threads, start_delay=0.2, timeout=60)  # fmt: skip
        found = collect(procs)["web1"]
        finals += found["finals"]
        answers_by_code[f"mop-up {round_}"] = found["answers"]
        drain(activity.pk, timeout=30)
    return rounds


def summary(report):
    shown = ("events", "database", "answers", "reconcile", "cluster_after")
    print("\n" + json.dumps({k: report.get(k) for k in shown}, indent=1))
    if report["violations"]:
        print(f"\ncluster-test: {len(report['violations'])} violation(s):")
        for v in report["violations"]:
            print(f"  - {v}")
    else:
        lost = report["answers"]["lost_acknowledgements"]
        print(f"\ncluster-test: 0 violations, {lost} lost acknowledgements")


if __name__ == "__main__":
    sys.exit(main())

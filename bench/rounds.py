"""One bench run's measuring: the servers and writers it drives (start_servers) and Bench,
which runs each unit of a round (fresh stock, a wrk phase, the writers' drain, the
outcome and the lost acknowledgements read from the database) and records its figures.
bench/run.py builds the stack and calls them round after round."""

import time

from bench import stack as stk
from bench.cli import STRATEGIES
from bench.loadgen import run_wrk, summarize


class Bench:
    def __init__(self, args, mode, stack, data):
        self.args = args
        self.mode = mode
        self.stack = stack
        self.data = data
        self.results = {name: [] for name in STRATEGIES}
        self.servers = {}
        self.redis = None
        self.writers = []
        self.writer_env = None
        self.mariadb_pids = stk.pids_named("mariadbd") or stk.pids_named("mysqld")
        self.tokens_file = None

    # -- measuring ------------------------------------------------------------------------

    def cpu(self, server):
        snap = {
            "gunicorn": server.cpu(),
            "redis": self.redis.cpu(),
            "mariadbd (shared)": sum(stk.cpu_seconds(p) for p in self.mariadb_pids),
        }
        if self.writers:
            snap["writers"] = sum(w.cpu() for w in self.writers)
        return snap

    def settle(self, server, timeout=20.0):
        """Wait until the server has answered what wrk left queued (its CPU goes quiet)."""
        deadline = time.monotonic() + timeout
        before = server.cpu()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = server.cpu()
            if now - before < 0.02:
                return
            before = now

    def phase(self, server, path, *, stop_on_sold_out, round_no, fixed_s=None):
        base = self.servers[server]
        before = self.cpu(base["service"])
        raw = run_wrk(
            f"{base['url']}{path}",
            self.tokens_file,
            threads=self.args.wrk_threads,
            connections=self.args.connections,
            duration_s=fixed_s or self.mode["cap_s"],
            stop_on_sold_out=stop_on_sold_out,
            offset=round_no * 397,
            stack=self.stack,
        )
        self.settle(base["service"])
        after = self.cpu(base["service"])
        result = summarize(raw)
        result["numbers"] = raw.get("numbers") or []
        cpu = {k: round(after[k] - before[k], 2) for k in before}
        result["cpu_s"] = cpu
        if result["responses"]:
            result["server_cpu_ms_per_request"] = round(1000 * cpu["gunicorn"] / result["responses"], 2)
        result["sell_out_reached"] = result["sold_out_seen_by_threads"] >= 1
        return result

    # -- the units ----------------------------------------------------------------------------

    def _new_sale(self, tag):
        """A fresh live sale, given the time a sale warmed minutes before its start has: the writers
        list the live sales every SALES_REFRESH_S (seckill/writer.py), and a purchase of a sale no
        writer reads yet would wait for that listing instead of for a commit."""
        from seckill.writer import SALES_REFRESH_S  # after django.setup()

        sale = self.data.create_sale(tag, self.args.stock)
        time.sleep(SALES_REFRESH_S + 0.5)
        return sale

    def _drained(self, sale, res):
        """Wait for the writers to settle every intent, then count the 2xx answers with no order."""
        res["drain_s"] = self.data.wait_drained(sale)
        res.update(self.data.lost_acks(res.pop("numbers")))

    def run_unit(self, unit, r):
        d = self.data
        stock = self.args.stock
        fixed = self.args.fixed_seconds or self.mode["fixed_s"]
        if unit == "ceiling":
            res = self.phase("committed", "/bench/ceiling/1/", stop_on_sold_out=False, round_no=r, fixed_s=fixed)
            res.pop("numbers")
            self.record("ceiling", r, res, {})
        elif unit == "seckill":
            sale = self._new_sale(f"seckill-r{r}")
            path = f"/api/seckill/activities/{sale}/purchase/"
            selling = self.phase("committed", path, stop_on_sold_out=True, round_no=r)
            self._drained(sale, selling)
            after_selling = d.sale_outcome(sale)
            soldout = self.phase("committed", path, stop_on_sold_out=False, round_no=r, fixed_s=fixed)
            self._drained(sale, soldout)
            final = d.sale_outcome(sale)
            d.retire_sale(sale)
            selling["after_selling_phase"] = {
                k: after_selling[k] for k in ("sold", "redis_remaining", "open_reservations")
            }
            self.record("seckill", r, selling, final)
            soldout["sold_during_phase"] = final["sold"] - after_selling["sold"]
            self.record("seckill_soldout", r, soldout, final)
        elif unit == "seckill_reserved":
            sale = self._new_sale(f"reserved-r{r}")
            path = f"/api/seckill/activities/{sale}/purchase/"
            res = self.phase("reserved", path, stop_on_sold_out=True, round_no=r)
            self._drained(sale, res)
            outcome = d.sale_outcome(sale)
            d.retire_sale(sale)
            self.record("seckill_reserved", r, res, outcome)
        elif unit in ("db_pessimistic", "db_optimistic", "naive"):
            product = d.create_product(f"{unit}-r{r}", stock)
            if unit == "naive":
                d.prepare_naive(product, stock)
            path = f"/bench/{unit.replace('_', '-')}/{product}/purchase/"
            res = self.phase("committed", path, stop_on_sold_out=True, round_no=r)
            res.update(d.lost_acks(res.pop("numbers")))
            self.record(unit, r, res, d.product_outcome(product, stock, naive=unit == "naive"))
        else:
            raise ValueError(unit)

    def record(self, name, r, res, outcome):
        entry = {"round": r + 1, **res, **outcome}
        self.results[name].append(entry)
        bad = ""
        if name != "ceiling" and (
            outcome.get("oversold") or outcome.get("undersold") or outcome.get("over_limit") or res.get("lost_acks")
        ):
            bad = (
                f"  oversold {outcome['oversold']} undersold {outcome['undersold']} over_limit {outcome['over_limit']}"
                f" lost_acks {res.get('lost_acks')}"
            )
        sold = f" sold {outcome['sold']}/{outcome['stock']}" if outcome else ""
        print(
            f"  {name:<16} {res['rps']:>8.1f} req/s  p50 {res['p50_ms']:>7.1f}  p99 {res['p99_ms']:>7.1f} ms"
            f"  answers {res['answers']}  errors {res['errors']}{sold}{bad}",
            flush=True,
        )


def start_servers(args, stack, redis_port, units, env_committed, env_reserved):
    """gunicorn with SECKILL_ACK=committed (every strategy but seckill_reserved) and, when
    seckill_reserved runs, an identical one with SECKILL_ACK=reserved (idle, it costs nothing)."""
    servers = {}
    web_port = stk.free_port(8391)
    shape = {"workers": args.workers, "worker_class": args.worker_class, "threads": args.threads}
    servers["committed"] = {
        "service": stk.start_gunicorn(stack, "gunicorn-committed", web_port, env_committed, **shape),
        "url": f"http://127.0.0.1:{web_port}",
    }
    if "seckill_reserved" in units:
        reserved_port = stk.free_port(8392 if web_port != 8392 else 8393)
        servers["reserved"] = {
            "service": stk.start_gunicorn(stack, "gunicorn-reserved", reserved_port, env_reserved, **shape),
            "url": f"http://127.0.0.1:{reserved_port}",
        }
    return servers


def start_writers(args, stack, env):
    """The order writers of the load phases: `manage.py seckill_writer`, args.writers of them."""
    return [stk.start_writer(stack, f"writer-{i + 1}", env) for i in range(args.writers)]

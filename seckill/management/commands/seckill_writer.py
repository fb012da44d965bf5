"""`manage.py seckill_writer`: the order writer (seckill/writer.py), a long-running process.

Run one or more (the Procfile runs one); they share each sale's intents through a Redis
consumer group. SIGTERM or SIGINT finishes the batch in hand, then exits. Its log lines
are JSON like the web's (config/logs.py), each with `process: seckill_writer` and the
writer's consumer name.
"""

import signal
import threading

from django.core.management.base import BaseCommand
from structlog.contextvars import bind_contextvars

from seckill import intents
from seckill.writer import BLOCK_MS, MAX_BATCH, Writer


class Command(BaseCommand):
    help = "Write the orders of accepted flash-sale purchases, in batches, until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--max-batch", type=int, default=MAX_BATCH, help="Intents per transaction at most.")
        parser.add_argument("--block-ms", type=int, default=BLOCK_MS, help="How long one read waits for intents.")
        parser.add_argument("--consumer", help="Name in the consumer group (default: host:pid).")

    def handle(self, *args, max_batch, block_ms, consumer, **options):
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        consumer = consumer or intents.consumer_name()
        bind_contextvars(process="seckill_writer", consumer=consumer)
        Writer(consumer=consumer, max_batch=max_batch, block_ms=block_ms).run(stop)

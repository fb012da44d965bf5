"""Structured logs: one JSON object a line in production, readable lines for a developer.

Every process (gunicorn's workers, `manage.py seckill_writer`, Celery's worker and beat)
logs through the root logger of Django's LOGGING, whose one handler renders each record,
a plain `logging` call's or a structlog logger's, with the context bound for the request
(`request_id`, core/request_id.py) or the Celery task (`task_id`, `task`) merged in.

LOG_FORMAT picks the renderer: `json` (the default) or `console` (the default when
DEBUG is on; `make run` sets it too). LOG_LEVEL is the root level (INFO).

The purchase path logs one line per purchase, so a line must be cheap. JSON lines are
rendered by `JsonFormatter`, one dict and one json.dumps per record: structlog's
ProcessorFormatter took about three times as long (it copies the record and runs a chain
of processors). structlog loggers only hand their event dict on (`wrap_for_formatter`),
and a plain `logging` call may log a dict as its message (the purchase line does): both
render as that dict's fields.
Records skip the caller lookup and the thread and process names (the logging HOWTO's
"Optimization"), which no line shows. Console lines use structlog's ProcessorFormatter
and ConsoleRenderer: slower, and only for a developer's terminal.
"""

import json
import logging
import logging.config
from datetime import UTC, datetime

import structlog
from structlog.contextvars import merge_contextvars

FORMATS = ("json", "console")

# What every LogRecord has; anything else on a record is an `extra` and becomes a field.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "_logger", "_name"}


def log_format(*, requested, debug):
    fmt = requested or ("console" if debug else "json")
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def _access_fields(event, record):
    """gunicorn's access line as fields (its atoms), with the request id the response carries."""
    atoms = record.args
    if record.name != "gunicorn.access" or not isinstance(atoms, dict):
        return
    event.update(
        event="request",
        method=atoms.get("m"),
        path=atoms.get("U"),
        status=atoms.get("s"),
        bytes=atoms.get("B"),
        duration_ms=round(atoms.get("D", 0) / 1000, 2),
        remote_addr=atoms.get("h"),
        request_id=atoms.get("{x-request-id}o"),
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per record: the structlog event dict or the message, the record's
    extras, the bound context, `level`, `logger`, `time` (UTC, ISO 8601), `exception`."""

    def __init__(self, gunicorn=False):
        super().__init__()
        self.gunicorn = gunicorn

    def format(self, record):
        msg = record.msg
        if isinstance(msg, dict):  # an event dict: a structlog logger's, or one logged as the message
            event = dict(msg)
        else:
            event = {"event": record.getMessage()}
            for key, value in record.__dict__.items():
                if key not in _RECORD_FIELDS:
                    event[key] = value
            if self.gunicorn:
                _access_fields(event, record)
        merge_contextvars(None, None, event)
        event["level"] = record.levelname.lower()
        event["logger"] = record.name
        event["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds")[:-6] + "Z"
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            event["stack"] = record.stack_info
        return json.dumps(event, default=repr)


def _console_fields(logger, method_name, event_dict):
    """A dict logged as the message (the purchase line) is the event; gunicorn's access atoms too."""
    record = event_dict.get("_record")
    if record is not None:
        if isinstance(record.msg, dict):
            event_dict.update(record.msg)
        _access_fields(event_dict, record)
    return event_dict


_CONSOLE_CHAIN = [
    merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=True, key="time"),
]


def formatter(fmt, gunicorn=False):
    """The formatter of the one handler; also what tests use to read a record as JSON."""
    if fmt == "json":
        return JsonFormatter(gunicorn=gunicorn)
    pre_chain = [*_CONSOLE_CHAIN, structlog.stdlib.ExtraAdder(), _console_fields]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.dev.ConsoleRenderer()],
    )


def _lean_records():
    logging._srcfile = None  # no caller lookup (a stack walk per record)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def logging_config(*, fmt, level):
    """Django's LOGGING, and structlog set up to hand its events to the same handler."""
    _lean_records()
    chain = [] if fmt == "json" else _CONSOLE_CHAIN  # JsonFormatter adds the fields itself
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *chain, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter, "fmt": fmt}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        # django.request logs every 4xx as a WARNING; in a sale most answers are an expected
        # 409 sold_out, and a log line each costs CPU on the hot path (the purchase path logs
        # its own one line, seckill/telemetry.py). Errors (5xx) still log. "django" loses
        # Django's own plain console handler (DEBUG only), so its lines are structured too.
        "loggers": {
            "django": {"handlers": [], "level": "INFO"},
            "django.db.backends": {"level": "WARNING"},
            "django.request": {"level": "ERROR"},
        },
    }


def celery_logging(logging_settings, loglevel):
    """Celery's setup_logging signal (config/celery.py): Django's LOGGING instead of Celery's
    own handlers, at the level of `--loglevel` (WARNING under `make run`, VERBOSE=1 for INFO)."""
    logging.config.dictConfig(logging_settings)
    if loglevel:
        logging.getLogger().setLevel(loglevel)

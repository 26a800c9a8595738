"""Logging through structlog, imported only when a record is emitted.

structlog costs ~90 ms to import here (it pulls in asyncio), more than a
whole container start, so records below the configured level cost nothing:
the level check happens before structlog is touched.

    from libcontainer import log
    log.configure(level="info", fmt="json", file="/run/x/log.json")
    log.info("container started", id="c1", pid=123)
"""
import sys

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_config = {"level": 30, "fmt": "text", "file": None}
_logger = None


def configure(level="warning", fmt="text", file=None):
    global _logger
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(LEVELS)})")
    _config.update(level=LEVELS[level], fmt=fmt, file=file)
    _logger = None


def to_file():
    return _config["file"] is not None


def _get():
    global _logger
    if _logger is None:
        import structlog
        stream = open(_config["file"], "a", buffering=1) if _config["file"] else sys.stderr
        if _config["fmt"] == "json":
            renderer = structlog.processors.JSONRenderer()
        else:
            renderer = structlog.dev.ConsoleRenderer(colors=False)
        _logger = structlog.wrap_logger(
            structlog.PrintLogger(stream),
            processors=[structlog.processors.add_log_level,
                        structlog.processors.TimeStamper(fmt="iso", key="time"),
                        _rename_event, renderer],
            context_class=dict)
    return _logger


def _rename_event(logger, method, event):
    # runc's log records (read by containerd and conmon) use "msg"
    if _config["fmt"] == "json":
        event["msg"] = event.pop("event", "")
    return event


def _emit(level, event, kw):
    if LEVELS[level] >= _config["level"]:
        getattr(_get(), level)(event, **kw)


def debug(event, **kw):
    _emit("debug", event, kw)


def info(event, **kw):
    _emit("info", event, kw)


def warning(event, **kw):
    _emit("warning", event, kw)


def error(event, **kw):
    _emit("error", event, kw)

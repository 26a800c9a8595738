"""Logging through structlog, imported only when a record is emitted.

structlog costs ~90 ms to import here (it pulls in asyncio), more than a
whole container start, so records below the configured level cost nothing:
the level check happens before structlog is touched.

Records look like runc's (logrus), which containerd and conmon read: text
is logfmt, ``time="2024-01-02T03:04:05Z" level=debug msg="created" id=c1``;
JSON is one compact object per line with sorted keys,
``{"id":"c1","level":"debug","msg":"created","time":"..."}``.

    from libcontainer import log
    log.configure(level="info", fmt="json", file="/run/x/log.json")
    log.info("container started", id="c1", pid=123)
"""
import sys

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_config = {"level": 30, "fmt": "text", "file": None}
_logger = None


def configure(level="warning", fmt="text", file=None):
    """`file`: a path (opened on the first record) or an open text stream
    (pyrunc opens --log before anything else, as runc)."""
    global _logger
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(LEVELS)})")
    _config.update(level=LEVELS[level], fmt=fmt, file=file)
    _logger = None


def open_file(path):
    """`path` opened for appending (created 0644 if absent), close-on-exec."""
    import os
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    return os.fdopen(fd, "a", buffering=1)


def to_file():
    return _config["file"] is not None


def enabled(level):
    return LEVELS[level] >= _config["level"]


def _get():
    global _logger
    if _logger is None:
        import structlog
        stream = _config["file"] or sys.stderr
        if isinstance(stream, str):
            stream = _config["file"] = open_file(stream)
        if _config["fmt"] == "json":
            import json
            renderer = structlog.processors.JSONRenderer(json.dumps, sort_keys=True,
                                                         separators=(",", ":"))
        else:
            renderer = logfmt
        _logger = structlog.wrap_logger(
            structlog.PrintLogger(stream),
            processors=[structlog.processors.add_log_level,
                        structlog.processors.TimeStamper(fmt="%Y-%m-%dT%H:%M:%SZ", utc=True,
                                                         key="time"),
                        _rename_event, renderer],
            context_class=dict)
    return _logger


def _rename_event(logger, method, event):
    # runc's records name the message "msg"
    event["msg"] = event.pop("event", "")
    return event


# not a regular expression: importing re costs a hot command ~5 ms
_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/@^+-")


def _quote(value):
    text = str(value)
    if text and _BARE.issuperset(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def logfmt(logger, method, event):
    """time, level, msg first, then the fields sorted, as logrus prints them."""
    head = [f"{k}={_quote(event.pop(k))}" for k in ("time", "level", "msg") if k in event]
    return " ".join(head + [f"{k}={_quote(v)}" for k, v in sorted(event.items())])


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

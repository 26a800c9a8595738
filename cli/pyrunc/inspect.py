"""Queries: state, list, ps, events (the hot ones load no config and no
plugins)."""
import os

from libcontainer import jsonio as json     # ~8 ms less than the json package
from libcontainer.errors import LibcontainerError

from .commandline import STOPPED, UsageError, command, need_id, Opt
from .runtime import oci_state


@command("ID")
def state(rt, o, args):
    """Print the state of a container as JSON."""
    cid = need_id(args, "state")
    data, status = rt.read(cid)
    print(json.dumps(oci_state(cid, data, status), indent=2))


@command("", Opt("format f", "value", "table", "table or json", "FORMAT"),
         Opt("quiet q", help="print only the ids"))
def list_(rt, o, args):
    """List the containers under --root."""
    from libcontainer import state as st
    try:
        names = sorted(n for n in os.listdir(rt.root) if os.path.isdir(rt.state_dir(n)))
    except FileNotFoundError:
        names = []
    rows = []
    for name in names:
        try:
            data = st.read(rt.state_dir(name))
        except (OSError, ValueError):
            continue        # half-created or being removed
        rows.append(oci_state(name, data, st.status(data, rt.state_dir(name))))
    if o.quiet:
        for row in rows:
            print(row["id"])
    elif o.format == "json":
        print(json.dumps(rows, separators=(",", ":")))
    elif o.format == "table":
        table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        table += [(r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"])
                  for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        for row in table:
            print("   ".join(v.ljust(w) for v, w in zip(row, widths)) + "   " + row[5])
    else:
        raise UsageError(f"--format: {o.format!r} is not table or json")



@command("ID [PS OPTIONS...]", Opt("format f", "value", "table", "table or json", "FORMAT"),
         stop_after=1)
def ps(rt, o, args):
    """List the container's processes: ps(1) output, or a JSON array of pids."""
    if not args:
        raise UsageError("ps: missing the container id")
    pids = rt.load(args[0]).processes()
    if o.format == "json":
        print(json.dumps(pids, separators=(",", ":")))
        return
    if o.format != "table":
        raise UsageError(f"--format: {o.format!r} is not table or json")
    import subprocess
    out = subprocess.run(["ps", *(args[1:] or ["-ef"])], capture_output=True, text=True)
    if out.returncode != 0:
        raise LibcontainerError(f"ps: {out.stderr.strip() or f'exit status {out.returncode}'}")
    lines = out.stdout.splitlines()
    header = lines[0].split() if lines else []
    if "PID" not in header:
        raise LibcontainerError("couldn't find PID field in ps output")
    column = header.index("PID")
    print(lines[0])
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            print(line)


@command("ID", Opt("stats", help="print the statistics once and exit"),
         Opt("interval", "value", "5s", "time between statistics (5s, 500ms, 1m)", "DURATION"))
def events(rt, o, args):
    """Print the container's resource statistics as JSON records."""
    import time
    cid = need_id(args, "events")
    interval = parse_duration(o.interval)
    container = rt.load(cid)
    ooms = None         # OOM kills seen: each new one is an "oom" record, as runc's
    next_stats = 0.0
    while True:
        if container.status() == STOPPED:
            if o.stats:
                raise LibcontainerError("container not running")
            return 0
        stats = container.stats()
        kills = (stats.get("memory") or {}).get("oom_kills", 0)
        if ooms is not None and kills > ooms:
            _emit({"type": "oom", "id": cid})
        ooms = kills
        if time.monotonic() >= next_stats:
            _emit({"type": "stats", "id": cid, "data": runc_stats(stats)})
            next_stats = time.monotonic() + interval
        if o.stats:
            return 0
        # the OOM kill counter is polled between stats records
        time.sleep(min(interval, 0.2))


def _emit(record):
    print(json.dumps(record, separators=(",", ":")), flush=True)


def parse_duration(text):
    """'5s', '500ms', '1m', '2' (seconds) -> seconds, as Go durations."""
    import re
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not m or float(m[1]) <= 0:
        raise UsageError(f"--interval: invalid duration {text!r}")
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m[2]]


def runc_stats(s):
    """The cgroups plugin's statistics in the shape of runc's events JSON."""
    cpu, mem = s.get("cpu") or {}, s.get("memory") or {}
    pids, blkio = s.get("pids") or {}, s.get("blkio") or {}

    def entry(usage, limit, max_usage=None, failcnt=0):
        return {"limit": limit or 0, "usage": usage or 0, "max": max_usage or 0,
                "failcnt": failcnt or 0}
    out = {
        "cpu": {"usage": {"total": cpu.get("usage_ns", 0), "percpu": cpu.get("per_cpu_ns", []),
                          "kernel": cpu.get("system_ns", 0), "user": cpu.get("user_ns", 0)},
                "throttling": {"periods": cpu.get("periods", 0),
                               "throttledPeriods": cpu.get("throttled_periods", 0),
                               "throttledTime": cpu.get("throttled_ns", 0)}},
        "memory": {"cache": mem.get("cache", 0),
                   "usage": entry(mem.get("usage"), mem.get("limit"), mem.get("max_usage"),
                                  mem.get("failcnt")),
                   "swap": entry(mem.get("swap_usage"), mem.get("swap_limit")),
                   "raw": {"rss": mem.get("rss", 0), "oom_kill": mem.get("oom_kills", 0)}},
        "pids": {"current": pids.get("current", 0), "limit": pids.get("limit") or 0},
        "blkio": {
            "ioServiceBytesRecursive": [
                {"major": d["major"], "minor": d["minor"], "op": op.title(), "value": d[key]}
                for d in blkio.get("devices", [])
                for op, key in (("read", "read_bytes"), ("write", "write_bytes"))],
            "ioServicedRecursive": [
                {"major": d["major"], "minor": d["minor"], "op": op.title(), "value": d[key]}
                for d in blkio.get("devices", [])
                for op, key in (("read", "read_ops"), ("write", "write_ops"))]},
        "hugetlb": s.get("hugetlb") or {},
    }
    if "network" in s:
        out["network_interfaces"] = s["network"]
    return out

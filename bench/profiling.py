"""--profile: where the time goes (wall-time split, -X importtime,
cProfile of the API and of the CLIs)."""
import os
import statistics
import subprocess
import sys
import time

from runners import REPO


# cProfile of a console script, run as its launcher would (sys.path[0] is
# the script's directory, which the plugin index cache keys on)
PROFILE_WRAPPER = """
import cProfile, os, runpy, sys
out, script = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[2:]
sys.path[0] = os.path.dirname(script)
prof = cProfile.Profile()
prof.enable()
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit:
    pass
finally:
    prof.disable()
    prof.dump_stats(out)
"""
OURS = r"/(core|plugins|cli)/[a-z_/]+\.py"


def profile(bench):
    """Where the time goes: wall-time split and -X importtime of nsinit exec
    (and pyrunc), cProfile of the API loop and of the CLIs."""
    import cProfile
    import io
    import pstats
    out = []

    def fresh(cmd):
        return [bench.uid("prof") if c == "ID" else c for c in cmd]

    def timed(cmd, n=15):
        ts = [r.ms for r in (bench.spawn(fresh(cmd)) for _ in range(n)) if r.ok]
        return statistics.median(ts) if ts else float("nan")

    def stats_text(st, sort, restrict, n):
        buf = io.StringIO()
        st.stream = buf
        st.sort_stats(sort).print_stats(*restrict, n)
        keep = [ln for ln in buf.getvalue().splitlines()
                if ln.strip() and not ln.lstrip().startswith(("Ordered by", "List reduced"))
                and not ln.rstrip().endswith(".prof")]
        return ["  " + ln.replace(REPO + "/", "") for ln in keep]

    ns_root = os.path.join(bench.tmp, "state", "nsinit")
    commands = {}
    if bench.nsinit:
        commands["nsinit exec /bin/true"] = [
            bench.nsinit, "--root", ns_root, "exec", "--id", "ID", "--config",
            bench.nsinit_config, "/bin/true"]
    if bench.rt("pyrunc"):
        commands["pyrunc run"] = bench.runtimes["pyrunc"] + [
            "run", "--bundle", bench.bundles.get("pyrunc-true", ["/bin/true"]), "ID"]

    out.append("== wall time split (medians of 15)")
    rows = [("python -I -S -c pass", [sys.executable, "-I", "-S", "-c", "pass"]),
            ("python -c pass (site, .pth files)", [sys.executable, "-c", "pass"]),
            ("python -c 'import libcontainer'", [sys.executable, "-c", "import libcontainer"]),
            ("python -c 'import ...cli.nsinit'",
             [sys.executable, "-c", "import libcontainer.cli.nsinit"])]
    if bench.nsinit:
        rows.append(("nsinit --help", [bench.nsinit, "--help"]))
    if bench.rt("pyrunc"):
        rows.append(("python -c 'import ...cli.pyrunc'",
                     [sys.executable, "-c", "import libcontainer.cli.pyrunc"]))
        rows.append(("pyrunc --version", [bench.runtimes["pyrunc"][0], "--version"]))
    rows += list(commands.items())
    for label, cmd in rows:
        out.append(f"  {label:<40} {timed(cmd):7.1f} ms")

    for label, cmd in commands.items():
        out.append(f"== -X importtime of {label}: top-level imports by cumulative time "
                   f"(medians of 7 runs, ms)")
        agg, totals = {}, []
        for _ in range(7):
            r = subprocess.run([sys.executable, "-X", "importtime", *fresh(cmd)],
                               capture_output=True, text=True)
            total = 0
            for line in r.stderr.splitlines():
                if not line.startswith("import time:") or "cumulative" in line:
                    continue
                self_us, cum, name = line[len("import time:"):].split("|", 2)
                total += int(self_us)
                if not name[1:].startswith(" "):            # top level
                    agg.setdefault(name.strip(), []).append(int(cum))
            totals.append(total)
        out.append(f"  all imports: {statistics.median(totals) / 1000:.1f} ms")
        for name, v in sorted(agg.items(), key=lambda kv: -statistics.median(kv[1]))[:15]:
            out.append(f"  {statistics.median(v) / 1000:7.1f}  {name}")

    n = 40
    out.append(f"== cProfile of the in-process API, {n} containers")
    bench.api.run()
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    for _ in range(n):
        bench.api.run()
    pr.disable()
    out.append(f"  {(time.perf_counter() - t0) * 1000 / n:.1f} ms per container under cProfile "
               f"(cumtime / {n} = per container)")
    st = pstats.Stats(pr)
    out.append("  -- library functions by cumulative time")
    out += stats_text(st, "cumulative", [OURS], 25)
    out.append("  -- everything by own time")
    out += stats_text(st, "tottime", [], 12)

    for label, cmd in commands.items():
        out.append(f"== cProfile of {label} (one run; library functions by cumulative time)")
        pfile = os.path.join(bench.tmp, "cli.prof")
        subprocess.run([sys.executable, "-c", PROFILE_WRAPPER, pfile, *fresh(cmd)],
                       capture_output=True)
        try:
            st = pstats.Stats(pfile)
        except OSError:
            out.append("  (no profile written)")
            continue
        out.append(f"  total {st.total_tt * 1000:.1f} ms")
        out += stats_text(st, "cumulative", [OURS], 20)
    return "\n".join(out)

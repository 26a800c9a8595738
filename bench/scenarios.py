"""The four sections that measure: latency, throughput, memory, the smallest
memory limit. A mixin of Bench (bench.py), which holds the runtimes and
the spawner."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from runners import KiB, MiB, NAMESPACES, PREFIX, Run, Series, interleave, last_line, memory_charge

BENCH_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench.py")

# a minimal program using the API, for its peak RSS
API_SNIPPET = """
import os, sys
import libcontainer
from libcontainer import configs
root, rootfs, cgpath, prefix, n = sys.argv[1:6]
factory = libcontainer.new(root)
null = os.open(os.devnull, os.O_RDWR)
for i in range(int(n)):
    config = configs.Config(
        rootfs=rootfs, hostname="bench",
        namespaces=[configs.Namespace(t) for t in %r],
        cgroups=configs.Cgroup(path=f"{cgpath}-{i}") if cgpath else None)
    c = factory.create(f"{prefix}-{i}", config)
    p = libcontainer.Process(args=["/bin/true"], stdin=null, stdout=null, stderr=null)
    try:
        c.start(p)
        p.wait()
    finally:
        c.destroy()
""" % (NAMESPACES,)


class Scenarios:
    # -- 1. latency -----------------------------------------------------------
    def latency(self):
        runs, warm = self.args.runs, self.args.warmup
        start = "start a container (/bin/true)"
        sec = [Series(start, "api", "in-process API", lambda: self.api.run(),
                      note=self.api_note),
               Series(start, "api-full", "in-process API, runc-spec features",
                      lambda: self.api.run(full=True, tag="apif"), note=self.api_note)]
        for name in ("pyrunc", "runc", "crun"):
            sec.append(self.cli_series(start, name, f"{name} run", self.cli_run(
                name, self.bundles.get(f"{name}-true", ["/bin/true"]), f"{name}-run")))
        if self.nsinit:
            ns_root = os.path.join(self.tmp, "state", "nsinit")
            sec.append(Series(start, "nsinit", "nsinit exec", lambda: self.spawn(
                [self.nsinit, "--root", ns_root, "exec", "--id", self.uid("nsinit"),
                 "--config", self.nsinit_config, "/bin/true"])))
        else:
            sec.append(Series(start, "nsinit", "nsinit exec", None, error="nsinit not installed"))
        sec.append(Series(start, "unshare", "unshare+chroot floor", lambda: self.spawn(
            ["/usr/bin/unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net",
             "--mount-proc", shutil.which("chroot") or "/usr/sbin/chroot", self.rootfs,
             "/bin/true"])))
        sec.append(Series(start, "python", "python -I -S -c pass",
                          lambda: self.spawn([sys.executable, "-I", "-S", "-c", "pass"])))
        self.log(f"latency: start a container, {warm}+{runs} rounds")
        interleave(sec, runs, warm)
        self.add_rows(sec)

        two = "create + start + delete"
        sec = [self.cli_series(two, name, name, self.cli_two_phase(
            name, self.bundles.get(f"{name}-2ph", ["/bin/true"])))
            for name in ("pyrunc", "runc", "crun")]
        self.log(f"latency: create+start+delete, {warm}+{runs} rounds")
        interleave(sec, runs, warm)
        self.add_rows(sec)

        # operations on a running `sleep` container, one per runtime
        running = {}
        for name in ("pyrunc", "runc", "crun"):
            if self.rt(name) is None:
                continue
            cid = self.uid(f"{name}-sleep")
            bundle = self.bundles.get(f"{name}-sleep", ["sleep", "100000"])
            r = self.spawn(self.runtimes[name] + ["create", "--bundle", bundle, cid])
            if r.ok:
                r = self.spawn(self.runtimes[name] + ["start", cid])
            if r.ok:
                running[name] = cid
            else:
                self.rt_error[f"{name}-running"] = \
                    f"{name}: cannot start a sleep container: {r.err}"
                self.spawn(self.runtimes[name] + ["delete", "--force", cid])
        for op, cmd in (("state", lambda c: ["state", c]),
                        ("kill", lambda c: ["kill", c, "28"]),      # SIGWINCH: ignored
                        ("list", lambda c: ["list"]),
                        ("exec", lambda c: ["exec", c, "/bin/true"])):
            section = f"{op} (running container)"
            sec = []
            for name in ("pyrunc", "runc", "crun"):
                if name in running:
                    sec.append(Series(section, name, f"{name} {op}",
                                      self.cli_op(name, cmd(running[name]))))
                else:
                    err = self.rt_error.get(name) or self.rt_error.get(f"{name}-running")
                    sec.append(Series(section, name, f"{name} {op}", None, error=err))
            self.log(f"latency: {op}, {warm}+{runs} rounds")
            interleave(sec, runs, warm)
            self.add_rows(sec)
        for name, cid in running.items():
            self.spawn(self.runtimes[name] + ["delete", "--force", cid])

    # -- 2. throughput -------------------------------------------------------
    def throughput(self):
        """Two passes, 1 2 8 32 then 32 8 2 1, each runtime in turn within a
        level; a level's rate is the better of its two passes (load from
        elsewhere only ever lowers a rate), its failures the sum."""
        levels = [1, 2, 8, 32]
        keys = (("api", "in-process API (worker processes)"), ("pyrunc", "pyrunc run"),
                ("runc", "runc run"), ("crun", "crun run"))
        passes = {}
        for c in levels + levels[::-1]:
            total = self.args.tp_total(c)
            self.log(f"throughput: {c} in flight, up to {total} containers each")
            got = passes.setdefault(c, {k: [] for k, _ in keys})
            got["api"].append(self.tp_api(c, total))
            for name in ("pyrunc", "runc", "crun"):
                got[name].append(self.tp_cli(name, c, total) if self.rt(name) else
                                 {"error": self.rt_error[name]})
        for c in levels:
            for key, label in keys:
                runs = passes[c][key]
                row = {"section": f"throughput, {c} in flight", "key": key, "label": label,
                       "unit": "ctr/s", "higher_is_better": True, "concurrency": c}
                good = [r for r in runs if "error" not in r]
                if not good:
                    row["error"] = runs[0]["error"]
                else:
                    best = max(good, key=lambda r: r["rate"])
                    row.update(median=best["rate"], passes=[round(r["rate"], 1) for r in good],
                               failures=sum(r["fail"] for r in good),
                               n=sum(r["ok"] for r in good),
                               errors=[e for r in good for e in r["errors"]][:3])
                    if key == "api":
                        row["note"] = self.api_note
                        row["worker"] = {k: best[k] for k in ("hwm_kb", "rss_ready_kb",
                                                               "startup_ms") if k in best}
                self.rows.append(row)

    def tp_api(self, c, total):
        per = max(1, total // c)
        spec = {"rootfs": self.rootfs, "cgroot": self.cgroot, "cgroup": self.api.with_cgroup,
                "count": per, "max_s": self.args.tp_max_s}
        procs = []
        try:
            for i in range(c):
                # a state root per worker: each destroys its own at the end
                s = dict(spec, tag=f"tp{c}-{i}",
                         root=os.path.join(self.tmp, "state", "api-tp", f"{c}-{i}"))
                procs.append(subprocess.Popen(
                    [sys.executable, BENCH_SCRIPT, "--worker", json.dumps(s)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            for p in procs:
                if p.stdout.readline().strip() != "ready":
                    raise RuntimeError("a worker did not start")
            t0 = time.perf_counter()
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
            outs = [json.loads(p.stdout.readline()) for p in procs]
            wall = time.perf_counter() - t0
        except BaseException as e:
            for p in procs:
                p.kill()
            if not isinstance(e, Exception):
                raise
            return {"error": f"workers: {type(e).__name__}: {e}"}
        finally:
            for p in procs:
                try:
                    p.stdin.close()
                except OSError:
                    pass
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        ok = sum(o["ok"] for o in outs)
        fail = sum(o["fail"] for o in outs)
        errors = [e for o in outs for e in o["errors"]][:3]
        return {"rate": ok / wall, "ok": ok, "fail": fail, "errors": errors, "wall_s": wall,
                "hwm_kb": max(o["hwm_kb"] for o in outs),
                "rss_ready_kb": max(o["rss_ready_kb"] for o in outs),
                "startup_ms": statistics.median(o["startup_ms"] for o in outs)}

    def tp_cli(self, name, c, total):
        """Keep `c` `run`s in flight, each slot with its own bundle (and so
        its own cgroup); containers per second over the whole batch, which
        stops growing after tp_max_s seconds (a slow runtime runs fewer)."""
        slots = [self.bundles.get(f"{name}-tp{c}-{i}", ["/bin/true"]) for i in range(c)]
        errfile = open(os.path.join(self.tmp, f"tp-{name}-{c}.err"), "w+b")
        env = self.spawn.env
        running, free = {}, list(range(c))
        ok = fail = started = 0
        errors = []
        t0 = time.perf_counter()
        deadline = time.monotonic() + self.args.tp_max_s     # a slow runtime: fewer
        while True:
            if started >= c and time.monotonic() > deadline:
                total = started
            while free and started < total:
                slot = free.pop()
                argv = self.runtimes[name] + ["run", "--bundle", slots[slot],
                                              self.uid(f"{name}-tp{c}")]
                pid = os.posix_spawn(argv[0], argv, env, file_actions=[
                    (os.POSIX_SPAWN_DUP2, self.spawn.null, 0),
                    (os.POSIX_SPAWN_DUP2, self.spawn.null, 1),
                    (os.POSIX_SPAWN_DUP2, errfile.fileno(), 2)])
                running[pid] = slot
                started += 1
            if not running:
                break
            pid, status = os.waitpid(-1, 0)
            if pid not in running:
                continue
            free.append(running.pop(pid))
            if os.waitstatus_to_exitcode(status) == 0:
                ok += 1
            else:
                fail += 1
        wall = time.perf_counter() - t0
        if fail:
            errfile.seek(0)
            errors = [last_line(errfile.read().decode(errors="replace"))]
        errfile.close()
        return {"rate": ok / wall, "ok": ok, "fail": fail, "errors": errors, "wall_s": wall}

    # -- 3. memory -----------------------------------------------------------
    def memory(self):
        reps = 2 if self.args.quick else 3
        self.peak_rss(reps)
        self.log("memory: cgroup charge of created and of running containers")
        for phase, args, hold in (("created", ["sleep", "100000"], True),
                                  ("running sleep", ["sleep", "100000"], False)):
            sec = f"memory charged to the cgroup: {phase}"
            # libcontainer API
            vals, err = [], ""
            for _ in range(reps):
                if not self.api.with_cgroup:
                    err = self.api_note
                    break
                c = None
                try:
                    c = self.api.started(args, hold, tag="mem")
                    time.sleep(0.1)
                    v = memory_charge(c.init_pid)
                    if isinstance(v, str):
                        err = v
                        break
                    vals.append(v)
                except Exception as e:
                    err = f"{type(e).__name__}: {e}"
                    break
                finally:
                    if c is not None:
                        c.destroy()
            self.rows.append(self._mem_row(sec, "api", "in-process API", vals, err))
            for name in ("pyrunc", "runc", "crun"):
                vals, err = [], self.rt_error.get(name, "")
                for _ in range(0 if err else reps):
                    v = self._cli_charge(name, args, hold)
                    if isinstance(v, str):
                        err = v
                        break
                    vals.append(v)
                self.rows.append(self._mem_row(sec, name, name, vals, err))

    def peak_rss(self, reps):
        """Peak RSS (max of the process and the children it reaped) through
        /usr/bin/time: a vfork from this process would report our own."""
        section = "peak RSS of the runtime process"
        self.log("memory: peak RSS of the runtime process")
        timefile = os.path.join(self.tmp, "time.out")
        gnu_time = shutil.which("time", path="/usr/bin:/bin")
        ns_root = os.path.join(self.tmp, "state", "nsinit")
        cg = f"{self.cgroot}/rss-api" if self.api.with_cgroup else ""
        contenders = [("api", "in-process API (python -c: 10 containers)",
                       lambda: [sys.executable, "-c", API_SNIPPET,
                                os.path.join(self.tmp, "state", "api-rss"), self.rootfs, cg,
                                f"{PREFIX}{self.token}-rss", "10"], None)]
        for name in ("pyrunc", "runc", "crun"):
            bundle = self.bundles.get(f"{name}-true", ["/bin/true"])
            contenders.append((name, f"{name} run", (lambda n=name, b=bundle: self.runtimes[n] + [
                "run", "--bundle", b, self.uid(f"{n}-rss")]), self.rt_error.get(name)))
        contenders.insert(2, ("nsinit", "nsinit exec", lambda: [
            self.nsinit, "--root", ns_root, "exec", "--id", self.uid("nsinit-rss"),
            "--config", self.nsinit_config, "/bin/true"],
            None if self.nsinit else "nsinit not installed"))
        for key, label, argv, err in contenders:
            row = {"section": section, "key": key, "label": label, "unit": "MiB"}
            if key == "api" and self.api_note:
                row["note"] = self.api_note
            vals = []
            if gnu_time is None:
                err = "/usr/bin/time not installed (apt-get install time)"
            for _ in range(0 if err else reps):
                r = self.spawn([gnu_time, "-f", "%M", "-o", timefile, *argv()])
                if not r.ok:
                    err = r.err
                    break
                with open(timefile) as f:
                    vals.append(int(f.read().split()[-1]) / 1024)
            if vals:
                row.update(median=statistics.median(vals), n=len(vals))
            else:
                row["error"] = err or "not measured"
            self.rows.append(row)

    def _cli_charge(self, name, args, hold):
        argv = self.runtimes[name]
        cid = self.uid(f"{name}-mem")
        bundle = self.bundles.get(cid[len(PREFIX):], args)
        try:
            r = self.spawn(argv + ["create", "--bundle", bundle, cid])
            if r.ok and not hold:
                r = self.spawn(argv + ["start", cid])
            if not r.ok:
                return r.err
            time.sleep(0.1)
            st = self.spawn(argv + ["state", cid], capture=True)
            if not st.ok:
                return f"state: {st.err}"
            pid = json.loads(st.out)["pid"]
            return memory_charge(pid)
        except (OSError, ValueError, KeyError) as e:
            return f"{type(e).__name__}: {e}"
        finally:
            self.spawn(argv + ["delete", "--force", cid])

    @staticmethod
    def _mem_row(section, key, label, vals, err):
        row = {"section": section, "key": key, "label": label, "unit": "MiB"}
        if vals:
            row["median"] = statistics.median(v[0] for v in vals) / MiB
            row["max_usage_mib"] = statistics.median(v[1] for v in vals) / MiB
            row["n"] = len(vals)
        else:
            row["error"] = err or "not measured"
        return row

    # -- 4. the smallest memory limit ------------------------------------------
    def min_memory(self):
        section = "smallest memory limit for `echo hi`"
        self.log("memory: smallest limit under which `echo hi` runs")
        out_path = os.path.join(self.tmp, "echo.out")

        def api_probe(limit):
            with open(out_path, "w+b") as out:
                try:
                    r = self.api.run(args=["echo", "hi"], memory=limit, stdout=out, tag="lim")
                except Exception as e:
                    return Run(False, err=f"{type(e).__name__}: {e}")
                out.seek(0)
                return Run(r.ok and out.read().strip() == b"hi", err=r.err)

        def cli_probe(name):
            def probe(limit):
                cid = self.uid(f"{name}-lim")
                bundle = self.bundles.get(cid[len(PREFIX):], ["echo", "hi"], memory=limit)
                r = self.spawn(self.runtimes[name] + ["run", "--bundle", bundle, cid],
                               capture=True)
                self.spawn(self.runtimes[name] + ["delete", "--force", cid])
                return Run(r.ok and r.out.strip() == "hi", err=r.err)
            return probe

        contenders = [("api", "in-process API", api_probe if self.api.with_cgroup else None,
                       self.api_note)]
        for name in ("pyrunc", "runc", "crun"):
            contenders.append((name, f"{name} run", cli_probe(name) if self.rt(name) else None,
                               self.rt_error.get(name)))
        for key, label, probe, err in contenders:
            row = {"section": section, "key": key, "label": label, "unit": "KiB"}
            if probe is None:
                row["error"] = err or "n/a"
            else:
                row.update(self._bisect(probe))
            self.rows.append(row)

    @staticmethod
    def _bisect(probe, step=64 * KiB, hi=32 * MiB):
        """Smallest multiple of `step` <= `hi` under which probe passes."""
        top = probe(hi)
        if not top.ok:
            return {"error": f"fails even at {hi // MiB} MiB: {top.err}"}
        lo, fail_err = 0, ""           # lo: known to fail (0 is assumed to)
        while hi - lo > step:
            mid = (lo + hi) // 2 // step * step
            r = probe(mid)
            if r.ok:
                hi = mid
            else:
                lo, fail_err = mid, r.err
        return {"median": hi / KiB, "fails_at_kib": lo / KiB, "fail_error": fail_err}

"""Results: rows, ratios against runc and crun, the targets, the table and
the JSON file. A mixin of Bench (bench.py)."""
import json
import os
import platform
import statistics
import subprocess
import time

from runners import REPO, RESULTS, cgroup_mounts, summary


class Report:
    # -- results ---------------------------------------------------------------
    def add_rows(self, series):
        for s in series:
            row = {"section": s.section, "key": s.key, "label": s.label, "unit": "ms"}
            if s.note:
                row["note"] = s.note
            st = summary(s.samples)
            if s.error or st is None:
                row["error"] = s.error or f"no successful run ({s.last_error})"
            else:
                row.update(st)
                row["failures"] = s.failures
                if s.failures:
                    row["last_error"] = s.last_error
                if s.parts:
                    row["parts"] = {k: statistics.median(v) for k, v in s.parts.items()}
            self.rows.append(row)

    def ratios(self):
        """Each row against the runc and crun rows of its section."""
        ref = {}
        for r in self.rows:
            if r["key"] in ("runc", "crun") and r.get("median"):
                ref[(r["section"], r["key"])] = r["median"]
        for r in self.rows:
            r["vs"] = {}
            for other in ("crun", "runc"):
                base = ref.get((r["section"], other))
                if base and r.get("median") is not None and r["key"] != other:
                    r["vs"][other] = r["median"] / base

    def get(self, section, key):
        return next((r for r in self.rows if r["section"] == section and r["key"] == key), {})

    def check_targets(self):
        start = "start a container (/bin/true)"

        def ratio(what, section, key, other, limit):
            """limit None: a reference ratio, no verdict."""
            row, base = self.get(section, key), self.get(section, other)
            t = {"target": what, "limit": f"<= {limit:.1f}x {other}" if limit else "reference"}
            if not row.get("median"):
                t.update(verdict="n/a", why=row.get("error", "not measured"))
            elif not base.get("median"):
                why = base.get("error", "not measured")
                t.update(verdict="n/a", why=why if why.startswith(other) else f"{other}: {why}",
                         measured=f"{row['median']:.1f} {row['unit']}")
            else:
                x = row["median"] / base["median"]
                t.update(verdict="info" if limit is None else "PASS" if x <= limit else "FAIL",
                         ratio=round(x, 2),
                         measured=f"{row['median']:.1f} vs {base['median']:.1f} {row['unit']}")
            self.targets.append(t)

        # the speed issue's targets: ratios measured in this run
        ratio("pyrunc run", start, "pyrunc", "runc", 1.5)
        ratio("pyrunc create + start + delete", "create + start + delete", "pyrunc", "runc", 1.5)
        for op in ("exec", "state", "kill", "list"):
            ratio(f"pyrunc {op}", f"{op} (running container)", "pyrunc", "runc", 1.5)
        ratio("nsinit exec /bin/true vs runc run", start, "nsinit", "runc", 1.5)
        ratio("in-process API per container vs the unshare floor", start, "api", "unshare", 2.4)
        ratio("in-process API per container vs crun run", start, "api", "crun", None)
        mine = self.get(start, "pyrunc").get("parts", {}).get("cpu")
        theirs = self.get(start, "runc").get("parts", {}).get("cpu")
        t = {"target": "pyrunc CPU time per run", "limit": "<= 2.0x runc"}
        if mine and theirs:
            x = mine / theirs
            t.update(verdict="PASS" if x <= 2.0 else "FAIL", ratio=round(x, 2),
                     measured=f"{mine:.1f} vs {theirs:.1f} ms of CPU (user + system)")
        else:
            t.update(verdict="n/a", why="not measured")
        self.targets.append(t)
        for key, label in (("api", "in-process API"), ("pyrunc", "pyrunc run")):
            row = self.get("smallest memory limit for `echo hi`", key)
            if not row and key != "api":
                continue
            t = {"target": f"`echo hi` under a 1 MiB memory limit ({label})",
                 "limit": "<= 1024 KiB"}
            if row.get("median"):
                t.update(verdict="PASS" if row["median"] <= 1024 else "FAIL",
                         measured=f"{row['median']:.0f} KiB")
            else:
                t.update(verdict="n/a", why=row.get("error", "not measured"))
            self.targets.append(t)
        for key in ("api", "pyrunc"):
            one = self.get("throughput, 1 in flight", key)
            two = self.get("throughput, 2 in flight", key)
            many = self.get("throughput, 32 in flight", key)
            par = [self.get(f"throughput, {c} in flight", key) for c in (2, 8, 32)]
            t = {"target": f"{key}: parallel throughput scales to 2 cores, no failures at 32",
                 "limit": "best of 2/8/32 in flight >= 1.5x 1 in flight; 0 failures"}
            if not (one.get("median") and all(r.get("median") for r in par)):
                t.update(verdict="n/a", why=(one.get("error") or two.get("error")
                                             or many.get("error") or "not measured"))
            else:
                best = max(r["median"] for r in par)
                x = best / one["median"]
                fails = sum(r.get("failures", 0) for r in [one, *par])
                t.update(verdict="PASS" if x >= 1.5 and fails == 0 else "FAIL",
                         ratio=round(x, 2),
                         measured=f"1: {one['median']:.0f}, 2: {two['median']:.0f}, "
                                  f"8: {par[1]['median']:.0f}, 32: {many['median']:.0f} ctr/s; "
                                  f"{fails} failures")
            self.targets.append(t)

    def table(self):
        la, lb = self.info.get("loadavg_start", (0, 0, 0)), os.getloadavg()
        versions = ", ".join(f"{n} {self.info[n + '_version'].split()[-1]}"
                             for n in ("pyrunc", "runc", "crun") if n + "_version" in self.info)
        lines = [f"libcontainer {self.info.get('libcontainer_version', '?')} | "
                 f"{os.cpu_count()} cpus, linux {platform.release()} | {versions} | "
                 f"load avg {la[0]:.2f} -> {lb[0]:.2f} | {self.args.runs} rounds"
                 f"{' (quick)' if self.args.quick else ''}"]
        for name, err in self.info.get("section_errors", {}).items():
            lines.append(f"SECTION {name} FAILED: {err}")
        lines.append("")
        w = 44
        head = (f"{'':<{w}} {'median':>10} {'p25-p75 / spread':>19} {'n':>4} "
                f"{'x crun':>7} {'x runc':>7}")
        lines.append(head)
        lines.append("-" * len(head))
        section = None
        for r in self.rows:
            if r["section"] != section:
                section = r["section"]
                lines.append(section)
            label = "  " + r["label"]
            if r.get("error"):
                lines.append(f"{label:<{w}} n/a ({r['error']})"[:200])
                continue
            unit = r["unit"]
            val = fmt(r["median"], unit)
            if "p25" in r:
                spread = f"{r['p25']:.1f}-{r['p75']:.1f}"
            elif "max_usage_mib" in r:
                spread = f"peak {r['max_usage_mib']:.2f}"
            elif "fails_at_kib" in r:
                spread = f"fails at {r['fails_at_kib']:.0f}"
            elif unit == "ctr/s":
                spread = "/".join(f"{v:.0f}" for v in r.get("passes", [])) + \
                    f", {r.get('failures', 0)} failed"
            else:
                spread = ""
            n = r.get("n", "")
            vs = [f"{r['vs'][o]:.2f}" if o in r.get("vs", {}) else "-" for o in ("crun", "runc")]
            extra = []
            if r.get("failures") and unit != "ctr/s":
                extra.append(f"{r['failures']} failed: {r.get('last_error', '')}")
            if r.get("failures") and r.get("errors"):
                extra.append(f"failure: {r['errors'][0]}")
            if r.get("note"):
                extra.append(r["note"])
            if r.get("parts"):
                extra.append(" ".join(f"{k} {v:.1f}" for k, v in r["parts"].items()))
            line = f"{label:<{w}} {val:>10} {spread:>19} {n!s:>4} {vs[0]:>7} {vs[1]:>7}"
            if extra:
                line += "  " + "; ".join(extra)
            lines.append(line)
        lines.append("")
        lines.append("targets")
        for t in self.targets:
            detail = t.get("measured", "")
            if "ratio" in t:
                detail = f"{t['ratio']:.2f}x ({detail})"
            if t.get("why"):
                detail = (detail + " " if detail else "") + f"({t['why']})"
            lines.append(f"  {t['verdict']:<5} {t['target']}: {detail}"[:220])
        return "\n".join(lines)

    def save(self, text):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        data = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": self.args.quick,
                "runs": self.args.runs, "warmup": self.args.warmup,
                "elapsed_s": round(time.monotonic() - self.t_start, 1),
                "host": self.host(), "info": self.info, "rows": self.rows,
                "targets": self.targets, "table": text.splitlines()}
        os.makedirs(RESULTS, exist_ok=True)
        path = os.path.join(RESULTS, f"{stamp}{'-quick' if self.args.quick else ''}.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
        return path

    def host(self):
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain"],
                               capture_output=True, text=True).stdout.strip()
        return {"kernel": platform.release(), "cpus": os.cpu_count(),
                "python": platform.python_version(), "commit": commit + ("+dirty" if dirty else ""),
                "loadavg_end": os.getloadavg(), "loadavg_start": self.info.get("loadavg_start"),
                "cgroup_hierarchies": [f"{t}:{m}" for m, t, _ in cgroup_mounts()]}


def fmt(value, unit):
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "MiB":
        return f"{value:.2f} MiB"
    if unit == "KiB":
        return f"{value:.0f} KiB"
    if unit == "ctr/s":
        return f"{value:.1f}/s"
    return f"{value:.2f} {unit}"

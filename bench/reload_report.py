#!/usr/bin/python3
# bench/reload_report.py: the report of bench/reload.sh (Debian's python3).
#   reload_report.py MANIFEST TSV_OUT RELOADS RSS_RELOADS
# MANIFEST lines: kind<TAB>server<TAB>app<TAB>dir, kind = series | rss | cold.
# Reads each dir's series.json / wrk.out / server.log / status-*.json (series),
# rss.json (rss), spawn-N.json (cold); prints the tables and the targets;
# writes every reload latency to TSV_OUT.
import glob
import json
import os
import re
import statistics
import sys

NAMES = {"lodge": "lodge-worker", "lodge5": "lodge-worker s5", "uwsgi": "uWSGI touch",
         "uwsgichain": "uWSGI chain", "gunicorn": "gunicorn HUP", "modwsgi": "mod_wsgi daemon"}
ORDER = ["lodge", "lodge5", "uwsgi", "uwsgichain", "gunicorn", "modwsgi"]
LODGES = ["lodge", "lodge5"]
LABEL = {"hello": "hello", "flask": "Flask"}
SETTLE = {"lodge": "settle 50 ms", "lodge5": "settle 5 ms"}
FLASK_FACTOR = 1.3
RSS_FACTOR = 1.10
RSS_WARM_FACTOR = 1.05
HELLO_TARGET_MS = 20.0

manifest, tsv_out, reloads, rss_reloads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def ms_of(v):
    m = re.match(r"([0-9.]+)(us|ms|s|m|h)$", v)
    if not m:
        return None
    n = float(m.group(1))
    return n * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000, "h": 3600000}[m.group(2)]


def parse_wrk(path):
    w = open(path).read() if os.path.exists(path) else ""
    r = {"requests": 0, "rps": 0.0, "non2xx": 0, "sock": (0, 0, 0, 0), "max_ms": None, "p99_ms": None}
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", w)
    if m:
        r["max_ms"] = ms_of(m.group(3))
    m = re.search(r"^\s*99%\s+(\S+)", w, re.M)
    if m:
        r["p99_ms"] = ms_of(m.group(1))
    m = re.search(r"(\d+) requests in", w)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([0-9.]+)", w)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", w)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", w)
    if m:
        r["sock"] = tuple(int(x) for x in m.groups())
    return r


LOG_LINE = re.compile(r"^\S+ lodge-worker(?:\[[^\]]*\])?\[\d+\]: (\w+): (.*)$")
BUILT = re.compile(r"app \S+: version (\d+) serves \(built in (\d+) ms\)")
ENDED = re.compile(r"app \S+: version (\d+) ended in (\d+) ms")


def lodge_log(path):
    """-> (built ms list, ended ms list, {level: {message: count}}, other lines)"""
    built, ended, odd, other = [], [], {}, []
    if not os.path.exists(path):
        return built, ended, odd, other
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = LOG_LINE.match(line)
        if not m:
            if line.strip():
                other.append(line)
            continue
        level, msg = m.groups()
        b = BUILT.search(msg)
        if b:
            built.append(int(b.group(2)))
        e = ENDED.search(msg)
        if e:
            ended.append(int(e.group(2)))
        if level not in ("info", "debug"):
            # Numbers vary from line to line: count the message's shape.
            shape = re.sub(r"\d+", "N", msg)
            odd.setdefault(level, {})
            odd[level][shape] = odd[level].get(shape, 0) + 1
    return built, ended, odd, other


def med(v):
    return statistics.median(v) if v else None


def f1(v, w=8):
    return f"{v:>{w}.1f}" if v is not None else f"{'-':>{w}}"


def verdict(ok):
    return "PASS" if ok else "MISS"


series, rss, cold = {}, {}, {}
for line in open(manifest):
    kind, srv, app, d = line.rstrip("\n").split("\t")
    if kind == "series":
        s = json.load(open(os.path.join(d, "series.json")))
        s["wrk"] = parse_wrk(os.path.join(d, "wrk.out"))
        s["dir"] = d
        try:
            s["spawn"] = json.load(open(os.path.join(d, "spawn.json")))
        except (OSError, ValueError):
            s["spawn"] = {}
        fm = os.path.join(d, "final-mismatch")
        s["final_mismatch"] = open(fm).read().strip() if os.path.exists(fm) else None
        for k in ("status-start", "status-end"):
            try:
                s[k] = json.loads(open(os.path.join(d, k + ".json")).read())
            except (OSError, ValueError):
                s[k] = None
        series[(srv, app)] = s
    elif kind == "rss":
        r = json.load(open(os.path.join(d, "rss.json")))
        r["dir"] = d
        fm = os.path.join(d, "final-mismatch")
        r["final_mismatch"] = open(fm).read().strip() if os.path.exists(fm) else None
        rss[app] = r
    elif kind == "cold":
        runs = []
        for f in sorted(glob.glob(os.path.join(d, "spawn-*.json"))):
            runs.append(json.load(open(f))["ready_ms"])
        cold[app] = {"runs": runs, "dir": d}

apps = [a for a in ("hello", "flask") if any(k[1] == a for k in series) or a in rss or a in cold]
out = []
P = out.append

# ---------------------------------------------------------------- table --
with open(tsv_out, "w") as t:
    t.write("kind\tserver\tapp\treload\tlatency_ms\n")
    for (srv, app), s in series.items():
        for i, x in enumerate(s["latencies_ms"], 1):
            t.write(f"series\t{srv}\t{app}\t{i}\t{x}\n")
    for app, r in rss.items():
        for i, x in enumerate(r["latencies_ms"], 1):
            t.write(f"rss\tlodge\t{app}\t{i}\t{x}\n")

P("")
P(f"-- reload latency under load ({reloads} reloads per series; ms from the end of the write to the")
P("   first response with the new version) and failures during the series --")
P("   failures = wrk non-2xx + wrk socket errors + failed probe polls; worst = max request latency")
hdr = (f"  {'server':<16}{'app':<6}{'ok':>6}{'p50':>8}{'p95':>8}{'max':>8}"
       f"{'failures':>10}{'non2xx':>8}{'sock c/r/w/t':>15}{'probe':>7}"
       f"{'worst wrk':>11}{'probe':>8}{'flips':>7}{'wrk req/s':>10}{'polls/s':>8}")
P(hdr)
details = []
for app in apps:
    for srv in ORDER:
        s = series.get((srv, app))
        if s is None:
            continue
        w = s["wrk"]
        fails = w["non2xx"] + sum(w["sock"]) + s["probe_failures"]
        s["fails"] = fails
        dur = max(1e-9, (w["requests"] / w["rps"]) if w["rps"] else 0)
        polls = s["probe_requests"] / dur if dur > 1e-6 else 0
        flag = "  <-" if fails else ""
        P(f"  {NAMES[srv]:<16}{LABEL[app]:<6}{s['ok']:>3}/{s['reloads']:<2}{f1(s['p50_ms'])}{f1(s['p95_ms'])}"
          f"{f1(s['max_ms'])}{fails:>10}{w['non2xx']:>8}{'/'.join(map(str, w['sock'])):>15}"
          f"{s['probe_failures']:>7}{f1(w['max_ms'], 11)}{f1(s['probe_max_ms'])}{s['flips']:>7}"
          f"{w['rps']:>10.0f}{polls:>8.0f}{flag}")
        if fails or s["missed"] or s["final_mismatch"]:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(s["probe_failure_kinds"].items())) or "none"
            details.append(f"  {NAMES[srv]} {LABEL[app]}: wrk non-2xx {w['non2xx']}, socket errors "
                           f"connect {w['sock'][0]} read {w['sock'][1]} write {w['sock'][2]} "
                           f"timeout {w['sock'][3]} (of {w['requests']} requests); probe: {kinds} "
                           f"(of {s['probe_requests']} polls); reloads not seen: {s['missed']}"
                           + (f" (the series stopped after reload {s['aborted_after']}: 2 in a row"
                              f" not seen within {s.get('reload_timeout_s', 0):.0f} s)"
                              if s.get("aborted_after") else ""))
            if s["final_mismatch"]:
                details.append("      " + s["final_mismatch"])
            for ex in s["probe_failure_examples"][:3]:
                details.append(f"      e.g. {ex['error']} after {ex['ms']} ms"
                               + (f", HTTP {ex['status']} '{ex['body'][:60]!s}'" if ex["status"] else ""))
P("  (ok = reloads whose new version was seen; flips = polls answered by an older version after a")
P("   newer one had answered; polls/s = the probe's achieved rate, 1 new connection per poll)")
if details:
    P("")
    P("-- failures in detail --")
    out.extend(details)

# --------------------------------------------------------------- ratios --
P("")
P("-- lodge-worker's reload p50 against each peer's (lodge/peer: below 1 = lodge is faster) --")
for app in apps:
    for ls in LODGES:
        l = series.get((ls, app))
        if l is None or l["p50_ms"] is None:
            continue
        parts = []
        for srv in ORDER[2:]:
            p = series.get((srv, app))
            if p is None or not p["p50_ms"]:
                continue
            parts.append(f"{NAMES[srv]} {l['p50_ms'] / p['p50_ms']:.3f}")
        if parts:
            P(f"  {LABEL[app]:<6}{NAMES[ls]:<17}({l['p50_ms']:.1f} ms): " + ", ".join(parts))

# ---------------------------------------------------------- cold, build --
P("")
P("-- lodge-worker: Flask (and hello) cold start vs reload --")
P("   cold start = fresh lodge-worker process -> first good 200 (no load); built = the")
P("   \"version N serves (built in X ms)\" of lodge's log: the new interpreter's build alone")
for app in apps:
    c = cold.get(app)
    if not c and not rss.get(app) and not any((ls, app) in series for ls in LODGES):
        continue
    line = f"  {LABEL[app]:<6}"
    if c and c["runs"]:
        line += (f"cold start median {med(c['runs']):.1f} ms, min {min(c['runs']):.1f} ms "
                 f"(runs: {', '.join(f'{x:.0f}' for x in c['runs'])})")
    for ls in LODGES:
        s = series.get((ls, app))
        if s is None:
            continue
        built, _, _, _ = lodge_log(os.path.join(s["dir"], "server.log"))
        s["built"] = built
        line += (f"\n        {NAMES[ls]:<16} under load: reload p50 {f1(s['p50_ms'], 0)} ms, "
                 f"built median {f1(med(built), 0)} ms (max {max(built) if built else '-'}, n={len(built)})")
    r = rss.get(app)
    if r is not None:
        built, _, _, _ = lodge_log(os.path.join(r["dir"], "server.log"))
        r["built"] = built
        line += (f"\n        lodge-worker     no load:    reload p50 {f1(r['p50_ms'], 0)} ms, "
                 f"built median {f1(med(built), 0)} ms (max {max(built) if built else '-'}, n={len(built)})")
    P(line)

# ------------------------------------------------------------------ RSS --
if rss:
    P("")
    P(f"-- lodge-worker VmRSS over {rss_reloads} reloads without load (after each checkpoint's old")
    P("   version ended; pid from the control socket's status) --")
    for app in apps:
        r = rss.get(app)
        if r is None:
            continue
        k = r["rss_kb"]
        cells = ", ".join(f"@{n} {k[n] / 1024:.1f}" for n in sorted(k, key=int))
        pids = r["pids"]
        pid_note = ("same pid throughout" if len(pids) == 1 else
                    "PID CHANGED (worker replaced itself): " + " -> ".join(map(str, pids)))
        P(f"  {LABEL[app]:<6}MiB {cells}; {pid_note}; {r['ok']}/{r['reloads']} reloads seen")
        for m in r.get("problems", []):
            P(f"        PROBLEM {m}")
        if r.get("aborted_after"):
            P(f"        the loop stopped after reload {r['aborted_after']}: 2 reloads in a row were"
              f" not seen within {r.get('reload_timeout_s', 0):.0f} s")

# ---------------------------------------------------------- lodge's log --
P("")
P("-- lodge-worker's stderr and app logs (every lodge run: series, RSS loops, cold starts) --")
odd_total = {}
others = []
runs = [(f"{NAMES[srv]} {LABEL[app]} series", s["dir"]) for (srv, app), s in series.items() if srv in LODGES]
runs += [(f"RSS loop {LABEL[app]}", r["dir"]) for app, r in rss.items()]
for app, c in cold.items():
    runs += [(f"cold start {LABEL[app]}", c["dir"])]
found = False
for what, d in runs:
    logs = ([os.path.join(d, "server.log")] if os.path.exists(os.path.join(d, "server.log"))
            else sorted(glob.glob(os.path.join(d, "server-*.log"))))
    for lf in logs:
        _, _, odd, other = lodge_log(lf)
        for level, msgs in odd.items():
            for msg, n in msgs.items():
                found = True
                P(f"  {what}: {level} x{n}: {msg}")
        for o in other[:5]:
            found = True
            P(f"  {what}: unparsed stderr line: {o[:160]}")
    for al in sorted(glob.glob(os.path.join(d, "logs", "*.log"))):
        text = open(al, errors="replace").read()
        bad = [x for x in text.splitlines() if re.search(r"Traceback|[Ee]rror|failed|warn", x)]
        if bad:
            found = True
            P(f"  {what}: app log {os.path.basename(al)}: {len(bad)} line(s) like: {bad[0][:140]}")
for (srv, app), s in series.items():
    if srv not in LODGES:
        continue
    st0, st1 = s.get("status-start"), s.get("status-end")
    for k, st in (("start", st0), ("end", st1)):
        if st and "error" in st:
            found = True
            P(f"  {NAMES[srv]} {LABEL[app]} series, control socket at the {k}: {st['error']}")
    if s.get("final_mismatch"):
        found = True
        P(f"  {NAMES[srv]} {LABEL[app]} series: {s['final_mismatch']}")
    if st0 and st1 and "error" not in st0 and "error" not in st1:
        a = st1["apps"][0] if st1.get("apps") else {}
        notes = []
        if st0["pid"] != st1["pid"]:
            notes.append(f"PID CHANGED {st0['pid']} -> {st1['pid']}")
        if a.get("reloads_ok") != reloads:
            notes.append(f"reloads_ok {a.get('reloads_ok')} (expected {reloads})")
        if a.get("reloads_failed"):
            notes.append(f"reloads_failed {a.get('reloads_failed')}")
        if a.get("version") != reloads + 1:
            notes.append(f"version {a.get('version')} (expected {reloads + 1})")
        if notes:
            found = True
            P(f"  {NAMES[srv]} {LABEL[app]} series, control status at the end: " + "; ".join(notes))
for app, r in rss.items():
    for m in r.get("problems", []):
        found = True
        P(f"  RSS loop {LABEL[app]}: {m}")
    if r.get("final_mismatch"):
        found = True
        P(f"  RSS loop {LABEL[app]}: {r['final_mismatch']}")
if not found:
    P("  nothing odd: no warning or error line, no traceback, pid unchanged, every reload counted once")

# -------------------------------------------------------------- targets --
P("")
P("-- targets (informational) --")
V = []
for ls in LODGES:
    s = series.get((ls, "hello"))
    if s is not None:
        ok = s["p50_ms"] is not None and s["p50_ms"] <= HELLO_TARGET_MS
        V.append((f"hello reload p50 <= {HELLO_TARGET_MS:.0f} ms ({SETTLE[ls]})",
                  f"{s['p50_ms']:.1f} ms" if s["p50_ms"] is not None else "no reload seen", ok))
for ls in LODGES:
    for app in apps:
        s = series.get((ls, app))
        if s is not None:
            V.append((f"zero failures, {NAMES[ls]} {LABEL[app]}",
                      f"{s['fails']} failed, {s['missed']} unseen", s["fails"] == 0 and s["missed"] == 0))
c = cold.get("flask")
if c and c["runs"]:
    lim = FLASK_FACTOR * med(c["runs"])  # the median cold start
    for ls in LODGES:
        s = series.get((ls, "flask"))
        if s is not None:
            ok = s["p50_ms"] is not None and s["p50_ms"] <= lim and not s["missed"]
            fig = (f"{s['p50_ms']:.0f} ms vs {lim:.0f} ms" if s["p50_ms"] is not None else "no reload seen")
            if s["missed"]:
                fig += f", {s['missed']}/{s['reloads']} unseen"
            V.append((f"Flask reload p50 <= {FLASK_FACTOR}x cold start, under load ({SETTLE[ls]})",
                      fig, ok))
    r = rss.get("flask")
    if r is not None:
        ok = r["p50_ms"] is not None and r["p50_ms"] <= lim and not r["missed"]
        fig = (f"{r['p50_ms']:.0f} ms vs {lim:.0f} ms" if r["p50_ms"] is not None else "no reload seen")
        if r["missed"]:
            fig += f", {r['missed']}/{r['reloads']} unseen"
        V.append((f"Flask reload p50 <= {FLASK_FACTOR}x cold start, no load (settle 50 ms)", fig, ok))
for app in apps:
    r = rss.get(app)
    if r is None:
        continue
    k = r["rss_kb"]
    # Stable: no growth once warmed up (reload 10: the serving threads'
    # states, the spare and the allocator's pools exist by then), and at
    # most RSS_FACTOR over the whole series.
    a, w, b = k.get("1"), k.get("10"), k.get(str(rss_reloads))
    name = f"{LABEL[app]} RSS stable: RSS@{rss_reloads} <= {RSS_FACTOR:.2f}x RSS@1"
    if a and w and b and r["ok"] == r["reloads"]:
        V.append((name, f"RSS@1 {a / 1024:.1f} MiB, RSS@{rss_reloads} {b / 1024:.1f} MiB ({b / a:.2f}x)",
                  b <= RSS_FACTOR * a))
        V.append((f"{LABEL[app]} RSS flat once warm: RSS@{rss_reloads} <= {RSS_WARM_FACTOR:.2f}x RSS@10",
                  f"RSS@10 {w / 1024:.1f} MiB, RSS@{rss_reloads} {b / 1024:.1f} MiB ({b / w:.2f}x)",
                  b <= RSS_WARM_FACTOR * w))
    else:
        V.append((name, f"RSS@1 {a / 1024:.1f} MiB; only {r['ok']} of {r['reloads']} reloads happened"
                  if a else "no RSS figures", False))
for name, fig, ok in V:
    P(f"  {name:<66}{fig:<50} {verdict(ok)}")

print("\n".join(out))

"""bench/front_report.py: the report half of bench/front.sh (run that; its
header says what is measured and how).

    /usr/bin/python3 bench/front_report.py RUNS.TSV RUNS DURATION "CONNS" HAS_LODGE

Reads the per-run figures front.sh wrote (one line per measurement) and
prints, per app and connection count, the medians over the runs, the ratios
and the targets (PASS/MISS, informational).  Also usable on a saved
bench/results/front-DATE.tsv.
"""

import csv
import statistics
import sys

NAMES = {
    "lodge-http": "lodge, HTTP front",
    "lodge-uwsgi": "lodge, uwsgi front",
    "lodge-user": "lodge, user socket",
    "modwsgi": "mod_wsgi daemon",
    "uwsgi": "uWSGI, uwsgi",
    "gunicorn": "gunicorn, http",
    "floor-close": "floor, new conn",
    "floor-pool": "floor, pooled",
    "router-direct": "lodge router",
    "uwsgi-http": "uWSGI http-socket",
}
APACHE_ROWS = ["lodge-http", "lodge-uwsgi", "lodge-user", "modwsgi", "uwsgi",
               "gunicorn", "floor-close", "floor-pool"]
DIRECT_ROWS = ["router-direct", "uwsgi-http"]
APPS = [("hello", "hello"), ("flask", "Flask")]
NAN = float("nan")


def errors(r):
    """Socket errors that should not happen, plus Apache's error lines.
    uWSGI's --http-socket closes after each response without saying so,
    which wrk counts as a read error: expected there, not counted."""
    n = int(r["err_connect"]) + int(r["err_write"]) + int(r["err_timeout"])
    if r["row"] != "uwsgi-http":
        n += int(r["err_read"])
    return n + int(r["apache_errors"])


def main(argv):
    tsv, runs, duration, conns_list, has_lodge = argv[1:6]
    conns_list = [int(c) for c in conns_list.split()]
    has_lodge = has_lodge == "1"
    rows = list(csv.DictReader(open(tsv), delimiter="\t"))

    def sel(app, conns, row):
        return [r for r in rows if r["app"] == app and int(r["conns"]) == conns
                and r["row"] == row]

    def med(sample, key):
        vals = [float(r[key]) for r in sample if r[key] not in ("-", "")]
        return statistics.median(vals) if vals else NAN

    verdicts = []
    flags = []
    for app, label in APPS:
        for conns in conns_list:
            print()
            print(f"-- {label} app, {conns} connections: median of {runs} run(s) x {duration} s --")
            print(f"  {'':<21}{'req/s':>8}{'spread':>8}{'p50 ms':>8}{'p99 ms':>8}"
                  f"{'CPU: wrk':>10}{'Apache':>8}{'backend':>9}{'conn/req':>10}"
                  f"{'non-2xx':>9}{'errors':>8}")
            m = {}
            for group, members in (("through Apache:", APACHE_ROWS),
                                   ("without Apache, Connection: close:", DIRECT_ROWS)):
                present = [row for row in members if sel(app, conns, row)]
                if not present:
                    continue
                print(f"  {group}")
                for row in present:
                    s = sel(app, conns, row)
                    rps = med(s, "rps")
                    rps_all = [float(r["rps"]) for r in s]
                    m[row] = rps
                    spread = (max(rps_all) - min(rps_all)) / rps * 100 if rps else 0.0
                    ap = med(s, "apache_cpu_pct")
                    ap_txt = "-" if ap != ap else f"{ap:.0f}%"
                    bc = sum(int(r["backend_conns"]) for r in s if r["backend_conns"] != "-")
                    br = sum(int(r["backend_reqs"]) for r in s if r["backend_reqs"] != "-")
                    cpr = f"{bc / br:.3f}" if br > 0 else "-"
                    n2 = sum(int(r["non2xx"]) for r in s)
                    er = sum(errors(r) for r in s)
                    mark = "  <- FLAG" if n2 or er else ""
                    print(f"  {NAMES[row]:<21}{rps:>8.0f}{spread:>7.1f}%{med(s, 'p50_ms'):>8.2f}"
                          f"{med(s, 'p99_ms'):>8.2f}{med(s, 'wrk_cpu_pct'):>9.0f}%"
                          f"{ap_txt:>8}{med(s, 'backend_cpu_pct'):>8.0f}%{cpr:>10}"
                          f"{n2:>9d}{er:>8d}{mark}")
                    for r in s:
                        if int(r["non2xx"]) or errors(r):
                            flags.append(
                                f"  FLAG {label} c={conns} {NAMES[row]} run {r['run']}: "
                                f"non-2xx {r['non2xx']}, socket errors connect/read/write/timeout "
                                f"{r['err_connect']}/{r['err_read']}/{r['err_write']}/{r['err_timeout']}, "
                                f"Apache error lines {r['apache_errors']}")

            def ratio(a, b):
                return m[a] / m[b] if m.get(a) and m.get(b) else NAN

            def target(a, b, factor, what):
                name = f"{label} c={conns}: {NAMES[a]} >= {what} {NAMES[b]}"
                if a not in m or b not in m:
                    why = "lodge rows skipped" if a.startswith(("lodge", "router")) else "not measured"
                    verdicts.append((name, f"n/a ({why})", None))
                    return
                r = ratio(a, b)
                verdicts.append((name, f"{m[a]:.0f} vs {m[b]:.0f} = {r:.3f}x", r >= factor))

            print("  ratios (req/s):")
            pairs = [("lodge-http", "modwsgi"), ("lodge-uwsgi", "modwsgi"),
                     ("lodge-http", "uwsgi"), ("lodge-uwsgi", "uwsgi"),
                     ("lodge-http", "gunicorn"), ("lodge-http", "floor-close"),
                     ("lodge-uwsgi", "floor-close"), ("lodge-user", "floor-pool"),
                     ("uwsgi", "floor-close"), ("floor-pool", "floor-close"),
                     ("router-direct", "uwsgi-http")]
            for a, b in pairs:
                if a in m and b in m:
                    print(f"    {NAMES[a] + ' / ' + NAMES[b]:<42}{ratio(a, b):6.2f}x")
            for lodge_row in ("lodge-http", "lodge-uwsgi"):
                target(lodge_row, "modwsgi", 2.0, "2x")
                target(lodge_row, "uwsgi", 1.0, "1.0x")
                if app == "hello":
                    target(lodge_row, "floor-close", 0.9, "90% of")
            if app == "hello":
                target("lodge-user", "floor-pool", 0.9, "90% of")
            target("router-direct", "uwsgi-http", 1.5, "1.5x")

    print()
    print("-- targets (informational) --")
    for name, fig, ok in verdicts:
        verdict = "-" if ok is None else ("PASS" if ok else "MISS")
        print(f"  {name:<62}{fig:<26}{verdict}")
    if not has_lodge:
        print("  (no lodge rows in this run: see 'lodge rows skipped' above)")

    print()
    if flags:
        print("-- errors (should be 0) --")
        print("\n".join(flags))
    else:
        print("errors: none (0 non-2xx responses, 0 socket errors, 0 Apache error lines in every measurement;")
        print("        uWSGI --http-socket's read errors are its unannounced closes, expected)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Turns the raw lines of bench/run.sh (CELL, SEQ, FIDELITY, STREAMS, USAGE, MICRO) into the
report: one table of the load cells (median of the repeats, with min-max), the ratios keygate/nginx
and keygate/peer, the other measurements, and each target of issue 7 as met or missed."""
import math
import statistics
import sys
from collections import defaultdict


def fields(line):
    out = {}
    for tok in line.split()[1:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main(path):
    lines = open(path).read().splitlines()
    head = [l for l in lines if l.split(" ", 1)[0] in ("CMD", "HOST", "PARAMS", "LOAD_BEFORE",
                                                         "LOAD_AFTER", "PINNING", "NOTE")]
    cells = defaultdict(list)
    seq, streams, micro, other = {}, {}, [], []
    for l in lines:
        kind = l.split(" ", 1)[0]
        f = fields(l)
        if kind == "CELL":
            secs = f["duration_us"] / 1e6
            f["rps"] = f["requests"] / secs
            f["cpu_us"] = f["cpu_ticks"] / f["hz"] * 1e6 / max(f["requests"], 1)
            # user space alone (older result files have no user_ticks)
            f["user_us"] = f.get("user_ticks", float("nan")) / f["hz"] * 1e6 / max(f["requests"], 1)
            cells[(f["mode"], int(f["conns"]), f["target"])].append(f)
        elif kind == "SEQ":
            seq[(f["target"], f["mode"])] = f
        elif kind == "STREAMS":
            streams[f["target"]] = f
        elif kind == "MICRO":
            micro.append(f)
        elif kind in ("FIDELITY", "USAGE"):
            other.append(l)

    for h in head:
        print(h)
    print()
    targets = []
    for (_, _, t) in cells:
        if t not in targets:
            targets.append(t)
    order = [t for t in ("direct", "nginx", "keygate", "portkey") if t in targets]

    print("Load (wrk, median of repeats [min-max]; latency in ms; CPU = target's utime+stime / request,"
          " split into user space + kernel; long = JSON requests carrying a long conversation,"
          " PARAMS prompt_kb; peak RSS = the highest up to that cell)")
    print("%-7s %-4s %5s  %-24s %8s %8s %8s %8s %8s %11s %6s" % (
        "target", "mode", "conns", "req/s [min-max]", "p50", "p99", "p99.9", "peakRSS", "CPU us",
        "user+sys", "errors"))
    agg = {}
    for mode in ("json", "sse", "long"):
        for c in sorted({k[1] for k in cells}):
            for t in order:
                rows = cells.get((mode, c, t))
                if not rows:
                    continue
                rps = [r["rps"] for r in rows]
                a = {
                    "rps": med(rps), "min": min(rps), "max": max(rps),
                    "p50": med([r["p50_us"] for r in rows]) / 1000,
                    "p99": med([r["p99_us"] for r in rows]) / 1000,
                    "p999": med([r["p999_us"] for r in rows]) / 1000,
                    "rss": max(r["hwm_kib"] for r in rows) / 1024,
                    "cpu": med([r["cpu_us"] for r in rows]),
                    "user": med([r["user_us"] for r in rows]),
                    "err": sum(r["errors"] + r["non2xx"] for r in rows),
                }
                agg[(mode, c, t)] = a
                print("%-7s %-4s %5d  %-24s %8.2f %8.2f %8.2f %6.1fMB %8.1f %11s %6d" % (
                    t, mode, c, "%.0f [%.0f-%.0f]" % (a["rps"], a["min"], a["max"]), a["p50"],
                    a["p99"], a["p999"], a["rss"], a["cpu"],
                    "%.1f+%.1f" % (a["user"], a["cpu"] - a["user"]) if not math.isnan(a["user"])
                    else "-", a["err"]))
        print()

    print("Ratios (keygate / reference)")
    print("%-4s %5s %14s %14s %16s %22s" % ("mode", "conns", "req/s vs nginx", "req/s vs peer",
                                           "CPU/req vs nginx", "added p99 vs nginx's"))
    for (mode, c, t), a in sorted(agg.items()):
        if t != "keygate":
            continue
        n = agg.get((mode, c, "nginx"))
        p = agg.get((mode, c, "portkey"))
        d = agg.get((mode, c, "direct"))
        added = "-"
        if n and d and n["p99"] - d["p99"] > 0:
            added = "%.2f (%.2f vs %.2f ms)" % ((a["p99"] - d["p99"]) / (n["p99"] - d["p99"]),
                                                a["p99"] - d["p99"], n["p99"] - d["p99"])
        print("%-4s %5d %14s %14s %16s %22s" % (
            mode, c, "%.2f" % (a["rps"] / n["rps"]) if n else "-",
            "%.1f" % (a["rps"] / p["rps"]) if p else "-",
            "%.2f" % (a["cpu"] / n["cpu"]) if n else "-", added))
    print()

    if seq:
        print("Sequential, one keep-alive connection (bench_client seq; us; added = over direct)")
        print("%-12s %-4s %7s %9s %9s %9s %11s %11s %14s" % (
            "target", "mode", "n", "p50", "p99", "p99.9", "added p50", "added p99",
            "1st event p50"))
        for t in order + ["keygate-poll"]:
            for mode in ("json", "sse"):
                s = seq.get((t, mode))
                if not s:
                    continue
                d = seq.get(("direct", mode))
                ap50 = s["p50_us"] - d["p50_us"] if d else float("nan")
                ap99 = s["p99_us"] - d["p99_us"] if d else float("nan")
                fe = s.get("first_event_p50_us", float("nan"))
                print("%-12s %-4s %7d %9.1f %9.1f %9.1f %11.1f %11.1f %14.1f" % (
                    t, mode, s["n"], s["p50_us"], s["p99_us"], s["p999_us"], ap50, ap99, fe))
        print()
    for l in other:
        print(l)
    for t, s in streams.items():
        print("STREAMS %s: %d streams, %d got their first event%s, RSS %.1f -> %.1f MB: %.2f KiB per stream%s" % (
            t, s["streams"], s["with_first_event"],
            ", %d failed, %d still pending" % (s.get("failed", 0), s["pending"]) if s.get("pending") else "",
            s["rss_before_kib"] / 1024,
            s["rss_open_kib"] / 1024, s["per_stream_kib"],
            " (INVALID: %d streams had ended when the RSS was read)" % s["ended"]
            if s.get("ended", 0) else ""))
    if micro:
        print()
        print("Micro-benchmarks (Google Benchmark, Release, core 0; wall and CPU time per operation)")
        for m in micro:
            print("  %-40s %12.1f ns wall %12.1f ns CPU" % (m["name"], m["ns"], m["cpu_ns"]))
    print()

    # ---- the targets of issue 7
    print("Targets (issue 7)")

    def verdict(name, ok, detail):
        print("  %-4s %-58s %s" % ("met" if ok else "MISS", name, detail))

    for mode in ("json", "sse"):
        k, n, p = (agg.get((mode, 64, t)) for t in ("keygate", "nginx", "portkey"))
        if k and n:
            r = k["rps"] / n["rps"]
            verdict("throughput @64 >= 0.8 x nginx (%s)" % mode, r >= 0.8, "%.2f" % r)
            r = k["cpu"] / n["cpu"]
            verdict("CPU/request <= 1.25 x nginx (%s, @64)" % mode, r <= 1.25, "%.2f" % r)
            d = agg.get((mode, 64, "direct"))
            if d and n["p99"] > d["p99"]:
                r = (k["p99"] - d["p99"]) / (n["p99"] - d["p99"])
                verdict("added p99 <= 1.5 x nginx's (%s, @64)" % mode, r <= 1.5, "%.2f" % r)
        if k and p:
            r = k["rps"] / p["rps"]
            verdict("throughput @64 >= 20 x peer (%s)" % mode, r >= 20, "%.1f" % r)
        if k:
            verdict("peak RSS under the 64-connection load <= 64 MB (%s)" % mode, k["rss"] <= 64,
                    "%.1f MB" % k["rss"])
    # keygate as configured for every cell, then with busy polling (server.busy_poll_us = 100).
    for t, how in (("keygate", ""), ("keygate-poll", ", busy_poll_us = 100")):
        ks, ds = seq.get((t, "json")), seq.get(("direct", "json"))
        if ks and ds:
            a = ks["p50_us"] - ds["p50_us"]
            verdict("sequential added latency p50 <= 100 us%s" % how, a <= 100, "%.1f us" % a)
        ks, ds, ns = seq.get((t, "sse")), seq.get(("direct", "sse")), seq.get(("nginx", "sse"))
        if ks and ds and ns and "first_event_p50_us" in ks:
            ak = ks["first_event_p50_us"] - ds["first_event_p50_us"]
            an = ns["first_event_p50_us"] - ds["first_event_p50_us"]
            verdict("added time to first SSE event <= 1.5 x nginx's (p50%s)" % how,
                    an > 0 and ak <= 1.5 * an, "%.1f vs %.1f us" % (ak, an))
    s = streams.get("keygate")
    if s:
        # A proxied stream holds two descriptors: below 2 per stream (plus a few), no proxy in one
        # process opens them all. Said, not excused: the verdict still needs every stream open.
        host = next((fields(h) for h in head if h.startswith("HOST")), {})
        nofile = host.get("nofile")
        limit = ""
        if isinstance(nofile, float) and nofile < 2 * s["streams"] + 64:
            limit = "; descriptor limit %d < 2 per stream" % int(nofile)
        verdict("<= 20 KiB RSS per concurrent stream (%d streams)" % s["streams"],
                s["with_first_event"] == s["streams"] and s.get("ended", 0) == 0 and
                s["per_stream_kib"] <= 20,
                "%.2f KiB, %d/%d open%s" % (s["per_stream_kib"], s["with_first_event"],
                                            s["streams"], limit))
    for m in micro:
        if m["name"].startswith("KeyPick/round_robin"):
            verdict("key selection over 100,000 keys <= 100 ns (round-robin, CPU time)",
                    m["cpu_ns"] <= 100, "%.1f ns CPU, %.1f ns wall" % (m["cpu_ns"], m["ns"]))
    for l in other:
        if l.startswith("FIDELITY"):
            f = fields(l)
            ok = f.get("mismatch", 1) == 0 and f.get("bad_status", 1) == 0 and f.get("ok", 0) > 0
            verdict("fidelity under load (stream bytes == upstream's)", ok,
                    "%d/%d identical" % (f.get("ok", 0), f.get("n", 0)))


if __name__ == "__main__":
    main(sys.argv[1])

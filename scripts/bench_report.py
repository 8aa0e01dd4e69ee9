#!/usr/bin/env python3
"""Reads the raw outputs of scripts/bench.sh (wrk text, latency JSON from
crates/bench/src/bin/open_loop.rs or oha, which share one shape, the fake Okta's
counters) and prints the medians, ratios and targets; also writes them to
target/bench/results.md, and last issue 15's ratios on one line. Exits 1 when a
warm run had a non-2xx answer (a 2xx, for the denied targets) or a socket error,
or when the fake Okta was called during the warm runs. Timing targets are
reported (met / not met), never asserted.

    bench_report.py half-max OUT       half of our median maximum, in req/s
    bench_report.py latency-line FILE LBL  one line of latency percentiles
    bench_report.py shared-line PREFIX A B  one line of a shared-core round
    bench_report.py pairs              issue 15's pairs, one NUMERATOR:DENOMINATOR a line
    bench_report.py report OUT         the table, results.md, the verdict
"""

import glob
import json
import os
import re
import statistics
import sys

LABELS = {
    "ours": "forward-auth `/oauth2/auth`",
    "ours_forward": "forward-auth `/oauth2/forward` (X-Forwarded-*)",
    "ours_redis": "forward-auth `/oauth2/auth`, sessions in Redis",
    "ours_jwt": "forward-auth `/oauth2/auth`, cookie + signed identity (`X-Auth-Request-Jwt`)",
    "ours_bearer": "forward-auth `/oauth2/auth`, `Authorization: Bearer` + signed identity",
    "bare": "bare actix-web handler",
    "bare_forward": "bare actix-web handler, sent ours_forward's request (X-Forwarded-*)",
    "bare_bearer": "bare actix-web handler, sent ours_bearer's request (`Authorization: Bearer`)",
    "apache": "Apache + mod_auth_openidc",
    "nginx_us": "nginx → auth_request → forward-auth",
    "nginx_bare": "nginx → auth_request → bare handler",
    "nginx_us_denied": "nginx → auth_request → forward-auth, denied (401, no cookie)",
    "nginx_bare_denied": "nginx → auth_request → bare handler, denied (401)",
    "nginx_static": "nginx static file (no check)",
}

# Issue 15's ratios, in the order of the last line: (key, numerator,
# denominator, target). Each is the median of the per-round ratios.
ISSUE_15 = [
    ("auth", "ours", "bare", 0.85),
    ("forward", "ours_forward", "bare_forward", 0.85),
    ("bearer", "ours_bearer", "bare_bearer", 0.80),
    ("nginx", "nginx_us", "nginx_bare", 0.95),
    ("nginx_denied", "nginx_us_denied", "nginx_bare_denied", 0.95),
    ("redis", "ours_redis", "ours", 0.95),
]
SIGN_IN_TARGET = 2000
# Pinned runs: the share of core 0 (percent) both sides of a ratio must have
# used in a round for that round to count. Quiet runs read 94-98%.
FULL_CORE = 90

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def seconds(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * UNITS[match.group(2)] if match else None


def parse_wrk(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    run = {"path": path, "non2xx": 0, "socket_errors": 0, "percentiles": {}}
    match = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    run["rps"] = float(match.group(1)) if match else None
    match = re.search(r"^\s*(\d+) requests in", text, re.M)
    run["requests"] = int(match.group(1)) if match else 0
    match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if match:
        run["non2xx"] = int(match.group(1))
    match = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if match:
        run["socket_errors"] = sum(int(g) for g in match.groups())
    for pct, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M):
        run["percentiles"][pct] = seconds(value)
    run["core0"] = read_share(path)
    return run


def round_of(path):
    return int(re.search(r"-r(\d+)\.", path).group(1))


def rounds(out, target):
    return sorted(glob.glob(os.path.join(out, "raw", f"wrk-{target}-r*.txt")), key=round_of)


def median_rps(out, target):
    values = [parse_wrk(p)["rps"] for p in rounds(out, target)]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def parse_shared(prefix, a, b):
    """A shared-core round (A and B loaded at once on one core): each side's
    requests per second of its own CPU time, their ratio, and the share of
    core 0 the two used together. None when a side has no figure."""
    try:
        with open(prefix + ".cpu", encoding="utf-8") as f:
            ns_a, ns_b, wall = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    runs = {side: parse_wrk(f"{prefix}.{side}.txt") for side in (a, b)}
    if not (ns_a > 0 and ns_b > 0 and wall > 0 and runs[a]["requests"] and runs[b]["requests"]):
        return None
    per_a = runs[a]["requests"] / (ns_a / 1e9)
    per_b = runs[b]["requests"] / (ns_b / 1e9)
    return {"a": per_a, "b": per_b, "ratio": per_a / per_b,
            "core0": 100 * (ns_a + ns_b) / wall, "runs": runs}


def shared_rounds(out, a, b):
    """The shared-core rounds of the pair a / b, in round order."""
    prefixes = [p[:-len(".cpu")] for p in
                glob.glob(os.path.join(out, "raw", f"shared-{a}-vs-{b}-r*.cpu"))]
    return [parse_shared(p, a, b) for p in sorted(prefixes, key=lambda p: int(p.rsplit("-r", 1)[1]))]


def parse_latency(path):
    data = json.load(open(path, encoding="utf-8"))
    pct = data.get("latencyPercentiles", {})
    statuses = data.get("statusCodeDistribution", {})
    errors = data.get("errorDistribution", {})
    summary = data.get("summary", {})
    return {
        "p50": pct.get("p50"),
        "p99": pct.get("p99"),
        "p99.9": pct.get("p99.9"),
        "rps": summary.get("requestsPerSec"),
        "ok": sum(n for code, n in statuses.items() if code.startswith("2")),
        "not_2xx": sum(n for code, n in statuses.items() if not code.startswith("2")),
        "errors": sum(errors.values()),
        "core0": read_share(path),
    }


def read_share(path):
    """The `.cpu` file bench.sh writes beside a run: core-0 share in percent."""
    if not os.path.exists(path + ".cpu"):
        return None
    text = open(path + ".cpu", encoding="utf-8").read().strip()
    return float(text) if text else None


def ms(value):
    return "–" if value is None else f"{value * 1000:.3f} ms"


def fmt_rps(value):
    return "–" if value is None else f"{value:,.0f}"


def is_denied(target):
    return target.endswith("_denied")


def sign_ins(out):
    """Per round: (achieved sign-ins/s, core-0 share in %, sign-ins per second
    of the service's CPU time), from crates/bench/src/bin/sign_in_load.rs's output."""
    runs = []
    for path in sorted(glob.glob(os.path.join(out, "raw", "signin-r*.txt")), key=round_of):
        values = dict(line.strip().split("=", 1) for line in open(path, encoding="utf-8")
                      if "=" in line)
        done, secs = int(values.get("SIGN_INS", 0)), float(values.get("SECONDS", 0) or 0)
        rate = done / secs if secs else None
        share = read_share(path)
        per_core = rate * 100 / share if rate and share else None
        runs.append((rate, share, per_core))
    return runs


def read_meta(out):
    meta = {}
    path = os.path.join(out, "raw", "meta.txt")
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            key, _, value = line.rstrip("\n").partition("=")
            meta[key] = value
    return meta


def report(out):
    meta = read_meta(out)
    failures = []
    lines = []
    w = lines.append

    targets = [t for t in LABELS if rounds(out, t)]
    medians = {t: median_rps(out, t) for t in targets}

    w(f"Run of {meta.get('date', '?')}: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, "
      f"{meta.get('kernel', '?')}, {meta.get('rustc', '?')}; service built from "
      f"{meta.get('commit', '?')}; load average {meta.get('load_before', '?')} before, "
      f"{meta.get('load_after', '?')} after; machine busy (all cores, 1 s sample) "
      f"{meta.get('busy_before', '?')}% before the warm-up, "
      f"{'/'.join(meta.get('busy_rounds', '?').split())}% before each throughput round"
      + (f", {'/'.join(meta['busy_latency'].split())}% before each latency round"
         if meta.get("busy_latency") else "") + ".")
    w(f"wrk {meta.get('wrk', '?')} (`-t1 -c{meta.get('connections', '?')} "
      f"-d{meta.get('duration', '?')}s`), latency: {meta.get('latency_tool', '?')}, nginx {meta.get('nginx', '?')}, "
      f"Apache {meta.get('apache', 'not run')}, mod_auth_openidc {meta.get('mod_auth_openidc', 'not run')}; "
      f"{meta.get('rounds', '?')} alternating round(s), medians. Pinning: {meta.get('pinning', '?')}."
      + (" SMOKE RUN: figures are not meaningful." if meta.get("smoke") == "true" else "")
      + (" DEBUG BUILD: figures are not meaningful." if meta.get("build") == "debug" else ""))
    w("")
    w("### Maximum throughput (wrk)")
    w("")
    w("| target | median req/s | each round | core 0 used | wrk p50 / p99 (median) |")
    w("|---|---:|---|---:|---|")
    for t in targets:
        runs = [parse_wrk(p) for p in rounds(out, t)]
        each = ", ".join(fmt_rps(r["rps"]) for r in runs)
        shares = [r["core0"] for r in runs if r["core0"] is not None]
        p50 = [r["percentiles"]["50"] for r in runs if r["percentiles"].get("50") is not None]
        p99 = [r["percentiles"]["99"] for r in runs if r["percentiles"].get("99") is not None]
        w(f"| {LABELS[t]} | {fmt_rps(medians[t])} | {each} | "
          f"{f'{statistics.median(shares):.0f}%' if shares else '–'} | "
          f"{ms(statistics.median(p50) if p50 else None)} / "
          f"{ms(statistics.median(p99) if p99 else None)} |")
    w("")
    w("*core 0 used*: CPU time of the processes under test (the server; nginx and "
      "the server; Apache) during the run, as a share of the one core they are "
      "pinned to. Near 100%: the core was theirs and they were saturated.")
    w("")

    # Ratios and targets.
    checks = []

    pinned = meta.get("pinning", "").startswith("servers")
    left_out = set()

    def ratio(a, b):
        """The median of the per-round ratios a/b (the two ran a few seconds
        apart in each round, which cancels slow drifts of the machine), and
        their range. Pinned, a round counts only when both sides had their
        core (FULL_CORE): below it the core was taken from them (a busy host
        under a virtual machine) or the load could not keep them busy, and
        the ratio says nothing about the code."""
        ra = {round_of(p): parse_wrk(p) for p in rounds(out, a)}
        rb = {round_of(p): parse_wrk(p) for p in rounds(out, b)}
        pairs = []
        for r, x in ra.items():
            y = rb.get(r)
            if not (x["rps"] and y and y["rps"]):
                continue
            starved = [s for s in (x["core0"], y["core0"]) if s is not None and s < FULL_CORE]
            if pinned and starved:
                left_out.add((a, b, r))
                continue
            pairs.append(x["rps"] / y["rps"])
        if not pairs:
            return None, ""
        if len(pairs) == 1:
            return pairs[0], ""
        return statistics.median(pairs), (min(pairs), max(pairs))

    def show(r, spread, fmt):
        if r is None:
            return "–"
        return fmt(r) + (f" (rounds {fmt(spread[0])} … {fmt(spread[1])})" if spread else "")

    def percent(x):
        return f"{x:.0%}"

    def times(x):
        return f"{x:.2f}×"

    def diff(x):
        return f"{x - 1:+.1%}"

    r, spread = ratio("ours", "bare")
    checks.append(("ours / bare actix-web", show(r, spread, percent), "≥ 80%",
                   None if r is None else r >= 0.80))
    r, spread = ratio("ours_redis", "ours")
    if r is not None:
        checks.append(("Redis store / memory store", show(r, spread, percent),
                       "(cost of SESSION_STORE=redis://)", None))
    r, spread = ratio("ours_jwt", "ours")
    if r is not None:
        checks.append(("signed identity / plain cookie check", show(r, spread, percent),
                       "(cost of IDENTITY_JWT_KEY)", None))
    r, spread = ratio("ours_bearer", "ours_jwt")
    if r is not None:
        checks.append(("bearer token / cookie (both signed)", show(r, spread, percent),
                       "(a bearer check vs a cookie check)", None))
    r, spread = ratio("ours", "apache")
    checks.append(("ours / mod_auth_openidc", show(r, spread, times), "≥ 3×",
                   None if r is None else r >= 3.0))
    r, spread = ratio("nginx_us", "nginx_bare")
    checks.append(("nginx → us vs nginx → bare", show(r, spread, diff),
                   "within 10% (≥ −10%)", None if r is None else r >= 0.90))
    r, spread = ratio("nginx_us", "nginx_static")
    checks.append(("nginx → us / nginx static", show(r, spread, percent),
                   "(cost of the subrequest)", None))
    r, spread = ratio("nginx_bare", "nginx_static")
    checks.append(("nginx → bare / nginx static", show(r, spread, percent),
                   "(cost of the subrequest)", None))

    latency = {}
    for t in ("ours", "ours_redis", "bare", "nginx_static"):
        files = sorted(glob.glob(os.path.join(out, "raw", f"latency-{t}-r*.json")))
        if files:
            latency[t] = [parse_latency(f) for f in files]
    if latency:
        fixed = bool(meta.get("latency_rate_fixed"))
        rate = int(meta["latency_rate"]) if meta.get("latency_rate") else half_max(out)
        w(f"### Latency at a fixed rate of {rate:,} req/s "
          f"({'set by --rate' if fixed else 'half our median maximum'}; "
          f"{meta.get('latency_tool', '?')}, open loop)")
        w("")
        w("| target | achieved req/s | core 0 used | p50 | p99 | p99.9 | p99 of each round |")
        w("|---|---:|---:|---:|---:|---:|---|")
        for t, runs in latency.items():
            med = {k: statistics.median(r[k] for r in runs if r[k] is not None)
                   for k in ("rps", "p50", "p99", "p99.9")}
            shares = [r["core0"] for r in runs if r["core0"] is not None]
            share = f"{statistics.median(shares):.0f}%" if shares else "–"
            each = ", ".join(ms(r["p99"]).replace(" ms", "") for r in runs)
            w(f"| {LABELS[t]} | {fmt_rps(med['rps'])} | {share} | {ms(med['p50'])} | "
              f"{ms(med['p99'])} | {ms(med['p99.9'])} | {each} ms |")
            if t == "ours" and not fixed:
                checks.append(("p99 at half max", ms(med["p99"]), "< 1 ms", med["p99"] < 0.001))
            for i, run in enumerate(runs, 1):
                if run["not_2xx"] or run["errors"]:
                    failures.append(f"latency {t} round {i}: {run['not_2xx']} non-2xx, "
                                    f"{run['errors']} errors")
        w("")

    signin_runs = sign_ins(out)
    signin_per_core = None
    if signin_runs:
        w("### Sign-in path (start + /authorize + callback, crates/bench/src/bin/sign_in_load.rs)")
        w("")
        w("| round | sign-ins/s achieved | core 0 used (service) | per second of one service core |")
        w("|---:|---:|---:|---:|")
        for i, (rate, share, per_core) in enumerate(signin_runs, 1):
            w(f"| {i} | {fmt_rps(rate)} | {'–' if share is None else f'{share:.0f}%'} | "
              f"{fmt_rps(per_core)} |")
        w("")
        w("*per second of one service core*: achieved sign-ins divided by the service's "
          "CPU time; the fake Okta (an RS256 signature per token) and the driver share "
          "the other core and may not keep core 0 busy.")
        w("")
        per_core = [p for _, _, p in signin_runs if p]
        signin_per_core = statistics.median(per_core) if per_core else None

    # Warm runs: every answer 2xx (401 for the denied targets), no socket
    # error, no Okta call.
    requests = non2xx = socket_errors = 0
    for path in glob.glob(os.path.join(out, "raw", "wrk-*.txt")) + \
            glob.glob(os.path.join(out, "raw", "warmup-*.txt")):
        run = parse_wrk(path)
        if run["rps"] is None:
            failures.append(f"{os.path.basename(path)}: wrk printed no result")
        if is_denied(os.path.basename(path).split("-")[1].split(".")[0]):
            if run["non2xx"] != run["requests"] or run["socket_errors"]:
                failures.append(f"{os.path.basename(path)}: {run['requests'] - run['non2xx']} "
                                f"2xx/3xx where every check is denied, "
                                f"{run['socket_errors']} socket errors")
            continue
        requests += run["requests"]
        non2xx += run["non2xx"]
        socket_errors += run["socket_errors"]
        if run["non2xx"] or run["socket_errors"]:
            failures.append(f"{os.path.basename(path)}: {run['non2xx']} non-2xx/3xx, "
                            f"{run['socket_errors']} socket errors")
    checks.append(("non-2xx answers in the warm runs", f"{non2xx} of {requests:,}", "0",
                   non2xx == 0))
    before = json.load(open(os.path.join(out, "raw", "okta-before.json")))
    after = json.load(open(os.path.join(out, "raw", "okta-after.json")))
    delta = {k: after[k] - before.get(k, 0) for k in after}
    calls = sum(delta.values())
    checks.append(("Okta calls during the warm runs",
                   f"{calls} (groups {delta.get('groups', 0)}, token {delta.get('token', 0)}, "
                   f"jwks {delta.get('jwks', 0)}, discovery {delta.get('discovery', 0)})",
                   "0", calls == 0))
    if calls:
        failures.append(f"the fake Okta was called during the warm runs: {delta}")
    if socket_errors:
        checks.append(("socket errors in the warm runs", str(socket_errors), "0", False))

    redis_reads = redis_round_trips(out)
    if redis_reads is not None:
        gets, checked = redis_reads
        checks.append(("Redis reads per check (sessions in Redis, warm runs)",
                       f"{gets:,} GETs for {checked:,} checks"
                       + (f" = 1 per {checked / gets:,.0f}" if gets else ""),
                       "far below 1 (local copies)", None))

    w("### Ratios and targets")
    w("")
    w("Throughput ratios are medians of the per-round ratios (both sides ran "
      "seconds apart in the same round), with their range over the rounds.")
    w("")
    w("| measure | value | target | met |")
    w("|---|---|---|---|")
    for name, value, target, met in checks:
        verdict = "" if met is None else ("met" if met else "**not met**")
        w(f"| {name} | {value} | {target} | {verdict} |")
    w("")

    # Issue 15: the same ratios, one line, for phase-by-phase comparison.
    fields, targets15 = [], []
    w("### Issue 15 targets" + ("" if pinned else " (NOT PINNED: not comparable)"))
    w("")
    w("| ratio | value | target | met |")
    w("|---|---|---|---|")
    for key, a, b, target in ISSUE_15:
        r, spread = ratio(a, b)
        fields.append(f"{key}={'–' if r is None else f'{r:.2f}'}")
        targets15.append(f"{target:.2f}")
        w(f"| {key} ({a} / {b}) | {show(r, spread, times)} | ≥ {target:.2f}× | "
          f"{'' if r is None else ('met' if r >= target else '**not met**')} |")
    fields.append(f"signins_per_s={'–' if signin_per_core is None else f'{signin_per_core:.0f}'}")
    targets15.append(str(SIGN_IN_TARGET))
    w(f"| sign-ins per second of one service core | {fmt_rps(signin_per_core)} | "
      f"≥ {SIGN_IN_TARGET:,} | "
      f"{'' if signin_per_core is None else ('met' if signin_per_core >= SIGN_IN_TARGET else '**not met**')} |")
    if left_out:
        w("")
        by_pair = {}
        for a, b, r in sorted(left_out):
            by_pair.setdefault(f"{a} / {b}", []).append(str(r))
        w(f"Left out of these ratios: {len(left_out)} round pair(s) in which a side had "
          f"under {FULL_CORE}% of core 0 (`.cpu` beside each run): "
          + "; ".join(f"{pair} round(s) {', '.join(rs)}" for pair, rs in by_pair.items())
          + ". Many left out: the core was not theirs (other work, a busy host); "
          "the figures that remain are noisy too.")
    shared_fields = []
    if any(shared_rounds(out, a, b) for _, a, b, _ in ISSUE_15):
        w("")
        w("### Issue 15 targets, one core shared")
        w("")
        w("Both sides of each pair at the same time, both servers (and each its own "
          "nginx) on core 0, a wrk per side on core 1; each side's requests divided by "
          "its own CPU time. The host's drifts fall on both sides alike.")
        w("")
        w("| ratio | value | each round | core 0 used by the pair | target | met |")
        w("|---|---|---|---:|---|---|")
        for key, a, b, target in ISSUE_15:
            runs = [x for x in shared_rounds(out, a, b) if x]
            if not runs:
                shared_fields.append(f"{key}=–")
                continue
            values = [x["ratio"] for x in runs]
            r = statistics.median(values)
            spread = (min(values), max(values)) if len(values) > 1 else ""
            shared_fields.append(f"{key}={r:.2f}")
            w(f"| {key} ({a} / {b}) | {show(r, spread, times)} | "
              f"{', '.join(f'{v:.3f}' for v in values)} | "
              f"{statistics.median(x['core0'] for x in runs):.0f}% | ≥ {target:.2f}× | "
              f"{'met' if r >= target else '**not met**'} |")
            for i, x in enumerate(runs, 1):
                for side, run in x["runs"].items():
                    denied = is_denied(side)
                    if (run["non2xx"] != run["requests"] if denied else run["non2xx"]) \
                            or run["socket_errors"]:
                        failures.append(f"shared {a} / {b} round {i}, {side}: "
                                        f"{run['non2xx']} non-2xx of {run['requests']}, "
                                        f"{run['socket_errors']} socket errors")
    last_line = (f"ratios: {' '.join(fields)} (targets {' '.join(targets15)}; "
                 f"{'pinned' if pinned else 'NOT pinned'}"
                 f"{f'; {len(left_out)} round pair(s) under {FULL_CORE}% of core 0 left out' if left_out else ''}"
                 f"{'; smoke' if meta.get('smoke') == 'true' else ''}"
                 f"{'; debug build' if meta.get('build') == 'debug' else ''})")

    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(f"(written to {os.path.join(out, 'results.md')})")
    if failures:
        sys.stdout.flush()
        print("\nbench: FAILED:", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        sys.stderr.flush()
    shared_line = (f"shared-core ratios: {' '.join(shared_fields)} (targets "
                   f"{' '.join(targets15[:-1])}; per second of each side's CPU time)"
                   if shared_fields else None)
    if shared_line:
        print(shared_line)
    print(last_line)
    with open(os.path.join(out, "ratios.txt"), "w", encoding="utf-8") as f:
        f.write((shared_line + "\n" if shared_line else "") + last_line + "\n")
    return 1 if failures else 0


def redis_round_trips(out):
    """(session GETs Redis ran, checks answered by the Redis-backed instance)
    over the warm runs, or None when the Redis mode did not run."""
    def gets(name):
        path = os.path.join(out, "raw", f"redis-{name}.txt")
        if not os.path.exists(path):
            return None
        match = re.search(r"^cmdstat_get:calls=(\d+)", open(path, encoding="utf-8").read(), re.M)
        return int(match.group(1)) if match else 0
    before, after = gets("before"), gets("after")
    if before is None or after is None:
        return None
    checked = sum(parse_wrk(p)["requests"] for p in
                  glob.glob(os.path.join(out, "raw", "wrk-ours_redis-r*.txt")) +
                  glob.glob(os.path.join(out, "raw", "warmup-ours_redis.txt")) +
                  glob.glob(os.path.join(out, "raw", "shared-ours_redis-vs-ours-r*.ours_redis.txt")))
    for path in glob.glob(os.path.join(out, "raw", "latency-ours_redis-r*.json")):
        run = parse_latency(path)
        checked += run["ok"] + run["not_2xx"]
    return after - before, checked


def half_max(out):
    value = median_rps(out, "ours")
    if not value:
        raise SystemExit("no throughput figure for forward-auth")
    return max(1, int(value / 2))


def main(argv):
    if len(argv) == 3 and argv[1] == "half-max":
        print(half_max(argv[2]))
        return 0
    if len(argv) == 4 and argv[1] == "latency-line":
        run = parse_latency(argv[2])
        print(f"  {argv[3]:<10} {fmt_rps(run['rps'])} req/s  p50 {ms(run['p50'])}  "
              f"p99 {ms(run['p99'])}  p99.9 {ms(run['p99.9'])}"
              + (f"  NON-2xx {run['not_2xx']}, errors {run['errors']}"
                 if run["not_2xx"] or run["errors"] else ""))
        return 0
    if len(argv) == 5 and argv[1] == "shared-line":
        x = parse_shared(argv[2], argv[3], argv[4])
        if x is None:
            print(f"  {argv[3]} | {argv[4]}: no figure")
        else:
            print(f"  {argv[3] + ' | ' + argv[4]:<37} {fmt_rps(x['a'])} | {fmt_rps(x['b'])} "
                  f"per CPU-second, ratio {x['ratio']:.3f}, core 0: {x['core0']:.0f}%")
        return 0
    if len(argv) == 2 and argv[1] == "pairs":
        for _, a, b, _ in ISSUE_15:
            print(f"{a}:{b}")
        return 0
    if len(argv) == 3 and argv[1] == "report":
        return report(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

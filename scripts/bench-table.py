#!/usr/bin/env python3
"""Markdown tables from the JSON reports of scripts/bench-matrix.sh (docs/performance.md).

    scripts/bench-table.py bench-results
"""
import json
import pathlib
import sys


def load(directory, name):
    path = pathlib.Path(directory) / f"{name}.json"
    if not path.exists() or path.stat().st_size == 0:
        return None
    return json.loads(path.read_text())


def ms(x):
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def row(label, r, extra=()):
    lat = r["latency"]
    measured = r["completed"] + r["failed"]
    cpu_ms = 1000 * r["server"]["cpu-seconds"] / max(r["completed"] + r["warmup"]["completed"], 1)
    ratio = r.get("ratios-to-ping-pong", {})
    cells = [
        label,
        f"{r['negotiations-per-second']:,.1f}",
        f"{r['messages']['per-second']:,.0f}",
        ms(lat["p50-ms"]), ms(lat["p90-ms"]), ms(lat["p99-ms"]), ms(lat["p99.9-ms"]),
        f"{r['retransmissions']:,}",
        f"{r['failed']}/{measured}" + (f" (+{r['warmup']['failed']} in warm-up)" if r["warmup"]["failed"] else ""),
        f"{cpu_ms:.1f}",
        f"{r['server']['peak-rss-bytes'] / 2**20:,.0f}",
    ]
    if ratio:
        cells.append(f"{ratio['negotiations-per-second-to-round-trips-per-second']:.4f} / {ratio['latency-p50-to-rtt-p50']:,.0f}")
    else:
        cells.append("–")
    cells.extend(extra)
    return "| " + " | ".join(cells) + " |"


HEADER = ("| {0} | negotiations/s | messages/s | p50 ms | p90 ms | p99 ms | p99.9 ms | retransmissions | failed | "
          "server CPU ms/negotiation | server peak RSS MiB | ratio to ping-pong: throughput / p50 |")
RULE = "|" + "---|" * 12


def main(directory):
    print("### Concurrent customers (DTLS)\n")
    print(HEADER.format("customers"))
    print(RULE)
    for c in (1, 10, 100, 1000):
        r = load(directory, f"customers-{c}")
        if r:
            print(row(str(c), r))
    print("\n### Transports (10 customers)\n")
    print(HEADER.format("transport"))
    print(RULE)
    for t in ("plain-udp", "dtls", "tls"):
        r = load(directory, f"transport-{t}")
        if r:
            print(row(t, r))
    print("\n### Stored orders (10 customers, DTLS)\n")
    print(HEADER.format("stored orders") + " open orders recovered | cpnpd ready s | database MiB |")
    print(RULE + "---|---|---|")
    for n in (1000, 10000, 100000, 1000000):
        r = load(directory, f"stored-{n}")
        if r:
            d = r.get("cpnpd", {})
            print(row(f"{n:,}", r, (f"{d.get('recovered-orders', 0):,}", f"{d.get('ready-seconds', 0):.1f}",
                                    f"{d.get('database-bytes', 0) / 2**20:,.0f}")))
    pings = [r for r in (load(directory, f"customers-{c}") for c in (1, 10, 100, 1000)) if r and "ping-pong" in r]
    if pings:
        p = pings[0]["ping-pong"]
        print(f"\nPing-pong reference ({p['message-bytes']}-byte datagrams): {p['round-trips-per-second']:,.0f} round trips/s, "
              f"RTT p50 {p['rtt']['p50-ms']} ms, p99 {p['rtt']['p99-ms']} ms.")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench-results")

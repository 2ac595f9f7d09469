"""How closely the network lab's relay keeps the trace's round trip.

Usage: python benches/netlab/relay_precision.py [--pings 300] [--size 64]  (root: it builds the lab)

Builds the lab (two namespaces, the veth pair, tbf at the Wi-Fi rates of
the paper's Table 3), starts a TCP echo server in the server namespace and
ping-pongs ``--size`` bytes on one connection: first straight across the
veth pair (the baseline: the link without the relay), then through the
relay at each configured round trip. Prints the median, 5th and 95th
percentile and the excess over the configured round trip, and that excess
as a ratio of the baseline's own round trip. A second client polls its
socket instead of blocking on it: on this VM a thread blocked for
milliseconds wakes up about half a millisecond late, a cost of the endpoint
that any client pays, so the polling client's excess is the relay's own.
Everything is torn down at the end.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time

from jointdnn_edge.netlab import SERVER_ADDR, DelayRelay, Lab
from jointdnn_edge.netlab._trace import LinkPoint

ECHO = """
import socket
s = socket.create_server(("0.0.0.0", 9009))
while True:
    c, _ = s.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while data := c.recv(65536):
        c.sendall(data)
    c.close()
"""
WIFI = (18.88, 54.97)
ROUND_TRIPS_MS = (0.0, 1.0, 10.0, 40.0, 80.0)


def ping_pong(addr: tuple[str, int], pings: int, size: int, *, poll: bool = False) -> list[float]:
    """Round trips (ms) of ``size`` bytes echoed ``pings`` times on one connection; ``poll``: the client polls a
    non-blocking socket instead of blocking on it (no wake-up latency of its own)."""
    with socket.create_connection(addr) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(not poll)
        out = []
        for _ in range(pings):
            t0 = time.perf_counter()
            s.sendall(b"x" * size)
            got = 0
            while got < size:
                try:
                    got += len(s.recv(65536))
                except BlockingIOError:
                    pass
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pings", type=int, default=300)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    with Lab(*WIFI) as lab:
        lab.start_server([sys.executable, "-c", ECHO])
        for _ in range(100):
            try:
                lab.client_call(socket.create_connection, (SERVER_ADDR, 9009)).result().close()
                break
            except OSError:
                time.sleep(0.05)
        base = lab.client_call(ping_pong, (SERVER_ADDR, 9009), args.pings, args.size).result()
        base_ms = statistics.median(base)
        print(f"lab: Wi-Fi {WIFI[0]}/{WIFI[1]} Mbit/s, {args.size}-byte ping-pong, {args.pings} pings each")
        print(f"baseline, straight across the veth pair: median {base_ms:.3f} ms")
        print("| configured rtt ms | median | p5 | p95 | excess (median - configured) | excess / baseline "
              "| polling client: median | its excess |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for rtt in ROUND_TRIPS_MS:
            point = LinkPoint(0.0, WIFI[0], WIFI[1], rtt_ms=rtt)
            with DelayRelay(lab.client_ns, (SERVER_ADDR, 9009), lambda p=point: p) as relay:
                got = lab.client_call(ping_pong, ("127.0.0.1", relay.port), args.pings, args.size).result()
                polled = statistics.median(
                    lab.client_call(ping_pong, ("127.0.0.1", relay.port), args.pings, args.size, poll=True).result()
                )
            q = statistics.quantiles(got, n=20)
            med = statistics.median(got)
            print(f"| {rtt:g} | {med:.3f} | {q[0]:.3f} | {q[-1]:.3f} | {med - rtt:.3f} | {(med - rtt) / base_ms:.1f}x "
                  f"| {polled:.3f} | {polled - rtt:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()

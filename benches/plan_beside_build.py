"""The session's first exact plan when a lookup-table build starts beside it, against the plan alone.

    python benches/plan_beside_build.py [--repeats 30]

A session with no table for the link plans exactly and starts a background
build. The build's first half millisecond is Python set-up that holds the
GIL, so a plan made beside it waited for it (0.5 ms against 25 µs here, and
14.7 ms once on the network lab's two busy cores). ``run()`` now starts the
build once its inference is done. Printed: the median and worst of (a) a plan
alone, (b) a plan right after a build starts (the order the session used),
(c) the decision of ``run()`` on a fresh session (its trace's
``planning_ms``; the build starts once the inference is done), each with its
ratio to (a), all measured in this run. ``plan()`` itself still starts the
build before it returns, so it pays the set-up as (b) does.
"""

from __future__ import annotations

import argparse
import statistics
import time

from jointdnn_edge import CostTable, JointSession, Network, zoo
from jointdnn_edge.models.graph import uniform_feeds
from jointdnn_edge.planner import plan
from jointdnn_edge.session import _TableBuild


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    g = zoo.load("alexnet", "onnx", size="small")
    costs = CostTable.from_layers([0.1] * g.n, [1.5] * g.n, **g.cost_skeleton())  # all-mobile: run() stays here
    feeds = uniform_feeds(g, 1)
    wifi = Network.preset("wifi", rtt_ms=5.0)
    cases = ("plan alone", "plan after a build starts", "session.run()'s decision")
    timings: dict[str, list[float]] = {case: [] for case in cases}
    for i in range(args.repeats):
        link = wifi.with_bandwidth(18.88 + 0.01 * i, 54.97)  # a new link each time: no answer cached
        t0 = time.perf_counter()
        plan(costs, link, cloud_keeps_tensors=False)
        timings["plan alone"].append(time.perf_counter() - t0)

        other = JointSession(g, "http://127.0.0.1:9", costs, network=link, lut_build="background")
        t0 = time.perf_counter()
        build = _TableBuild(other, link)
        plan(costs, link.with_bandwidth(17.0 + 0.01 * i, 54.0), cloud_keeps_tensors=False)
        timings["plan after a build starts"].append(time.perf_counter() - t0)
        build.thread.join()
        other.close()

        session = JointSession(g, "http://127.0.0.1:9", costs, network=link, lut_build="background")
        session.run(feeds)
        trace = session.last_trace
        assert trace is not None and trace.source == "plan (table building)", trace
        timings["session.run()'s decision"].append(trace.planning_ms / 1e3)
        building = session._building
        if building is not None:
            building.thread.join()
        session.close()
    base = statistics.median(timings["plan alone"])
    print("| case | median us | worst us | median / plan alone |")
    print("|---|---:|---:|---:|")
    for name, values in timings.items():
        med = statistics.median(values)
        print(f"| {name} | {med * 1e6:.0f} | {max(values) * 1e6:.0f} | {med / base:.1f}x |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Where the small-file gap is: user and system CPU of wfetch and curl.

Usage: bench/cpu.py [--small N] [--runs N] [--wfetch PATH] [--other PATH]

Starts nginx as bench.py does (127.0.0.1 only), then runs N small files in
one call, sequentially and with -Z --parallel-max 50, alternating the tools
--runs times, and prints the median wall time, user CPU and total CPU of
each (getrusage of the child). On loopback nginx shares the client's
cores, so CPU, not wall time, shows which client does more work. With
--other, a second wfetch binary joins the rotation (an A/B of two builds)
and the median of the paired ratios other / wfetch is printed.
Asserts nothing.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def run(cmd, env):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        print(f"  ! {cmd[0]} exited {r.returncode}: {r.stderr.decode()[:200]}", file=sys.stderr)
    user = r1.ru_utime - r0.ru_utime
    return wall, user, user + r1.ru_stime - r0.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--wfetch", default=os.path.join(bench.ROOT, "target", "release", "wfetch"))
    ap.add_argument("--other", help="a second wfetch binary to compare")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="wfetch-cpu-")
    env = dict(os.environ, WFETCH_CACHE_DIR=os.path.join(tmp, "cache"))
    proc, http, _ = bench.start_nginx(tmp, 1, a.small)
    tools = {"wfetch": [a.wfetch, "-s"], "curl": ["curl", "-s"]}
    if a.other:
        tools = {"wfetch": tools["wfetch"], "other": [a.other, "-s"], "curl": tools["curl"]}
    urls = []
    for i in range(a.small):
        urls += ["-o", "/dev/null", f"http://127.0.0.1:{http}/small/{i}.txt"]
    print(f"{a.small} small files, medians of {a.runs} alternating runs")
    print(f"{'mode':<24} {'tool':<8} {'wall ms':>8} {'user ms':>8} {'CPU ms':>8}")
    try:
        for label, extra in (("sequential", []), ("-Z --parallel-max 50", ["-Z", "--parallel-max", "50"])):
            for cmd in tools.values():
                run(cmd + extra + urls[:6], env)  # warm the cache and the page cache
            got = {name: [] for name in tools}
            order = list(tools.items())
            for _ in range(a.runs):
                # Each round starts with the next tool: the one that runs
                # first measured about 2 % faster.
                for name, cmd in order:
                    got[name].append(run(cmd + extra + urls, env))
                order = order[1:] + order[:1]
            for name, rs in got.items():
                med = [statistics.median(x[i] for x in rs) * 1000 for i in range(3)]
                print(f"{label:<24} {name:<8} {med[0]:8.1f} {med[1]:8.1f} {med[2]:8.1f}")
            if "other" in got:
                # Runs taken side by side compared pairwise: a drift in the
                # machine's load cancels out of each ratio.
                pair = [statistics.median(o[i] / max(w[i], 1e-9) for w, o in zip(got["wfetch"], got["other"])) for i in (0, 2)]
                print(f"{label:<24} other / wfetch, median of paired ratios: wall {pair[0]:.3f}, CPU {pair[1]:.3f}")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

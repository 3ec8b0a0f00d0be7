#!/usr/bin/env python3
"""wfetch versus curl, side by side, against a local nginx (127.0.0.1 only).

Usage: bench/bench.py [--size BYTES] [--small N] [--repeat N] [--wfetch PATH]

Starts nginx with a generated config and a self-signed certificate (made
with openssl), then measures and prints one table:
  1. a big file over HTTP and HTTPS, to /dev/null and to a file: MB/s
     (median of --repeat alternating runs; the ratio of the best runs
     is printed beside it)
  2. warm start: one small fetch as a whole process, guest cached: ms
  3. N small files in one call, sequential and with -Z --parallel-max 50
     (median of 5 x --repeat alternating runs; --repeat is 7 by default)
  4. N concurrent fetches in one process (-Z --parallel-immediate): peak RSS
Every ratio is the median of the paired ratios, one per round of
alternating runs (a change in the machine's speed between rounds cancels
out of it).
It asserts nothing: figures are printed, never judged (CI runs it tiny).
"""
import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def nginx_binary():
    for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"):
        if os.path.exists(p):
            return p
    sys.exit("nginx is not installed: make deps")


def start_nginx(tmp, size, small):
    www = os.path.join(tmp, "www")
    os.makedirs(os.path.join(www, "small"))
    with open(os.path.join(www, "big.bin"), "wb") as f:
        block = os.urandom(1 << 20)
        left = size
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)
    for i in range(small):
        with open(os.path.join(www, "small", f"{i}.txt"), "wb") as f:
            f.write(b"x" * 512)
    with open(os.path.join(www, "one.txt"), "wb") as f:
        f.write(b"hello\n")
    # A CA, and a server certificate signed by it (a self-signed leaf is
    # not a valid trust anchor for webpki).
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(["openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=wfetch bench CA",
                    "-keyout", f"{tmp}/ca-key.pem", "-out", f"{tmp}/ca.pem"], check=True, capture_output=True)
    subprocess.run(["openssl", "req", *ec, "-subj", "/CN=localhost",
                    "-keyout", f"{tmp}/key.pem", "-out", f"{tmp}/req.pem"], check=True, capture_output=True)
    with open(f"{tmp}/ext.cnf", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    subprocess.run(["openssl", "x509", "-req", "-in", f"{tmp}/req.pem", "-CA", f"{tmp}/ca.pem",
                    "-CAkey", f"{tmp}/ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", f"{tmp}/ext.cnf",
                    "-out", f"{tmp}/cert.pem"], check=True, capture_output=True)
    http, https = free_port(), free_port()
    conf = f"""
daemon off; master_process off; worker_processes 1;
error_log {tmp}/error.log warn; pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off; sendfile on; tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path {tmp}/b; proxy_temp_path {tmp}/p; fastcgi_temp_path {tmp}/f;
  uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{http} backlog=4096; listen 127.0.0.1:{https} ssl backlog=4096;
    ssl_certificate {tmp}/cert.pem; ssl_certificate_key {tmp}/key.pem;
    root {www};
  }}
}}"""
    path = os.path.join(tmp, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    proc = subprocess.Popen([nginx_binary(), "-p", tmp, "-c", path, "-e", f"{tmp}/error.log"])
    for port in (http, https):
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.01)
    return proc, http, https


def timed(cmd, env=None):
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        print(f"  ! {' '.join(cmd[:6])}... exited {r.returncode}: {r.stderr.decode()[:200]}", file=sys.stderr)
    return dt, r.returncode


def side_by_side(wcmd, ccmd, repeat, env, before=None):
    """Run wfetch and curl alternately `repeat` times each (so a change in
    the machine's load hits both alike), wfetch first in even rounds and
    curl first in odd ones (the tool that runs first measured about 2 %
    faster); the times of each, in round order. `before`, if given, runs
    untimed before every run."""
    w, c = [], []
    for i in range(repeat):
        order = [(ccmd, None, c), (wcmd, env, w)] if i % 2 else [(wcmd, env, w), (ccmd, None, c)]
        for cmd, e, into in order:
            if before:
                before()
            into.append(timed(cmd, e)[0])
    return w, c


def paired(num, den):
    """The median of the paired ratios num[i] / den[i], one per round: the
    two runs of a round are seconds apart, so a change in the machine's
    speed between rounds (it moved both tools by up to 30 % over HTTPS,
    session 13) cancels out of each ratio."""
    return statistics.median(x / y for x, y in zip(num, den))


def settle_disk(path=None):
    """Remove `path` and wait until the kernel has written back what the
    runs before wrote: a 1 GiB file still being flushed takes CPU from
    whatever is timed next (the flusher threads ran under the HTTPS
    figures that followed the HTTP -> file runs, session 12)."""
    if path and os.path.exists(path):
        os.remove(path)
    os.sync()


def peak_rss_mib(cmd, env=None):
    """Peak RSS of `cmd`, measured in a fresh python so no other child counts."""
    code = ("import resource, subprocess, sys; "
            "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    r = subprocess.run([sys.executable, "-c", code] + cmd, capture_output=True, env=env)
    return int(r.stdout or 0) / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1 << 30)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--wfetch", default=os.path.join(ROOT, "target", "release", "wfetch"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="wfetch-bench-")
    env = dict(os.environ, WFETCH_CACHE_DIR=os.path.join(tmp, "cache"))
    proc, http, https = start_nginx(tmp, a.size, a.small)
    rows = []
    try:
        ca = os.path.join(tmp, "ca.pem")
        out = os.path.join(tmp, "out.bin")
        W = [a.wfetch, "-s", "--cacert", ca]
        C = ["curl", "-s", "--cacert", ca]
        mb = a.size / 1e6
        subprocess.run(W + ["-o", "/dev/null", f"http://127.0.0.1:{http}/one.txt"], env=env)  # warm the cache
        for scheme, port in (("http", http), ("https", https)):
            url = f"{scheme}://localhost:{port}/big.bin"
            for sink in ("/dev/null", out):
                # Medians and paired ratios, not the best runs: over HTTPS
                # nginx saturates its core and sets the pace of either
                # tool, its speed swings by +-20 % from run to run, and the
                # best of a few runs told which tool happened to run in
                # nginx's fastest moment (bench/RESULTS.md, session 13).
                # The ratio of the best runs is printed beside it.
                w, c = side_by_side(W + ["-o", sink, url], C + ["-o", sink, url], a.repeat, env,
                                    before=lambda: settle_disk(out))
                name = f"{a.size >> 20} MiB {scheme.upper()} -> {'null' if sink == '/dev/null' else 'file'}"
                rows.append((name, f"{mb / statistics.median(w):.0f} MB/s", f"{mb / statistics.median(c):.0f} MB/s",
                             f"{paired(c, w):.2f}x", f"{min(c) / min(w):.2f}x"))
        # The 1 GiB files written above are still being flushed to disk:
        # let that finish before timing the small fetches, so that the
        # kernel's writeback does not take CPU from them.
        if os.path.exists(out):
            os.remove(out)
        os.sync()
        one = f"http://127.0.0.1:{http}/one.txt"
        w, c = side_by_side(W + ["-o", "/dev/null", one], C + ["-o", "/dev/null", one], a.repeat * 4, env)
        rows.append(("warm start, one small fetch", f"{statistics.median(w) * 1000:.1f} ms",
                     f"{statistics.median(c) * 1000:.1f} ms", f"{paired(w, c):.2f}x time", ""))
        urls = [f"http://127.0.0.1:{http}/small/{i}.txt" for i in range(a.small)]
        for label, extra in (("sequential", []), ("-Z --parallel-max 50", ["-Z", "--parallel-max", "50"])):
            wcmd = W + extra
            ccmd = C + extra
            for u in urls:
                wcmd += ["-o", "/dev/null", u]
                ccmd += ["-o", "/dev/null", u]
            # A run takes a tenth of a second and swings with the machine's
            # load: the median of many alternating runs is steadier than
            # the best of a few.
            w, c = side_by_side(wcmd, ccmd, max(1, a.repeat * 5), env)
            rows.append((f"{a.small} small files, {label}", f"{a.small / statistics.median(w):.0f} req/s",
                         f"{a.small / statistics.median(c):.0f} req/s", f"{paired(c, w):.2f}x", ""))
        # --parallel-immediate: as many in flight as the flags allow (by
        # default a -Z thread of wfetch ramps up only while servers keep it
        # waiting, and curl waits for connections to reuse).
        wcmd = W + ["-Z", "--parallel-immediate", "--parallel-max", str(a.small)]
        for u in urls:
            wcmd += ["-o", "/dev/null", u]
        ccmd = C + ["-Z", "--parallel-immediate", "--parallel-max", str(min(a.small, 300))]
        for u in urls:
            ccmd += ["-o", "/dev/null", u]
        w = peak_rss_mib(wcmd, env)
        c = peak_rss_mib(ccmd)
        rows.append((f"{a.small} concurrent fetches, peak RSS", f"{w:.1f} MiB", f"{c:.1f} MiB", "target <= 64 MiB", ""))
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'wfetch':>12}  {'curl':>12}  {'ratio':>16}  {'best-run ratio':>14}")
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:>12}  {r[2]:>12}  {r[3]:>16}  {r[4]:>14}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The disk alone, as budgetd's commits use it (issue 8, docs/benchmarks.md "Sixteenth session").

A log-like writer appends FRAMES frames of 8,216 bytes (an 8 KiB page and its WAL header) to a
72 MiB file it overwrites in turn, then calls fdatasync, RATE times a second for SECONDS; beside
it, optionally, a checkpoint-like writer adds BG MB/s to another file with an fdatasync every
25 ms. Prints the log writer's latency (write + fdatasync) percentiles. Files go to DIR
(default /tmp/fsync-probe, removed afterwards): put it on the disk the database is on.

    scripts/fsync-probe.py RATE SECONDS [BG_MB_PER_S=0] [FRAMES=17] [DIR]
    scripts/fsync-probe.py 1000 8          # the log alone at ~95,000 events/s
    scripts/fsync-probe.py 1000 8 55       # beside the checkpoints' writes
"""
import os
import shutil
import sys
import threading
import time

if len(sys.argv) < 3:
    sys.exit(__doc__)
RATE, SECS = int(sys.argv[1]), float(sys.argv[2])
BG = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
FRAMES = int(sys.argv[4]) if len(sys.argv) > 4 else 17
DIR = sys.argv[5] if len(sys.argv) > 5 else "/tmp/fsync-probe"

os.makedirs(DIR, exist_ok=True)
SIZE = 72 << 20
log = os.open(os.path.join(DIR, "log"), os.O_RDWR | os.O_CREAT)
os.ftruncate(log, 0)
os.pwrite(log, b"\1" * SIZE, 0)  # allocated once, then overwritten, as a restarted WAL is
os.fsync(log)
stop = False


def checkpoints():
    f = os.open(os.path.join(DIR, "db"), os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    chunk, offset = b"\2" * int(BG * 1e6 / 40), 0
    while not stop:
        started = time.monotonic()
        os.pwrite(f, chunk, offset)
        offset += len(chunk)
        os.fdatasync(f)
        rest = 0.025 - (time.monotonic() - started)
        if rest > 0:
            time.sleep(rest)
    os.close(f)


thread = threading.Thread(target=checkpoints) if BG > 0 else None
if thread:
    thread.start()
frames = b"\3" * (FRAMES * 8216)
latencies, offset, t0 = [], 0, time.monotonic()
for i in range(int(RATE * SECS)):
    due = t0 + i / RATE
    while time.monotonic() < due:
        pass
    if offset + len(frames) > SIZE:
        offset = 0
    started = time.monotonic()
    os.pwrite(log, frames, offset)
    os.fdatasync(log)
    latencies.append(time.monotonic() - started)
    offset += len(frames)
stop = True
if thread:
    thread.join()
os.close(log)
shutil.rmtree(DIR, ignore_errors=True)
latencies.sort()


def q(p):
    return 1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))]


print(f"rate {RATE}/s, {FRAMES} frames, beside {BG} MB/s: p50 {q(.5):.3f} p90 {q(.9):.3f} p99 {q(.99):.3f} "
      f"p99.9 {q(.999):.3f} max {1000 * latencies[-1]:.3f} ms, {100 * sum(x > 0.001 for x in latencies) / len(latencies):.1f} % over 1 ms")

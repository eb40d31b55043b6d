#!/usr/bin/env python3
"""Where a thread waits: its off-CPU time by kernel stack, and how long it waited for a core.

Reads `perf script -F comm,tid,cpu,time,event,trace,ip,sym` of a recording of
sched:sched_switch and sched:sched_wakeup with call graphs (-g -a), as scripts/offcpu.sh makes
it, and follows one thread (its tid): every time it left a CPU, why (the state it left in and the
kernel frames under __schedule), how long it was blocked (switch-out to its wakeup) and how long
it then waited in a run queue (wakeup to switch-in). The second figure is the one a busy machine
adds: the thread could run, no core took it.

    perf script -i off.data -F comm,tid,cpu,time,event,trace,ip,sym | scripts/offcpu.py TID
"""
import collections
import re
import sys

# Frames that say only "it scheduled": the reason is below them.
SCHEDULER = {
    "__schedule", "schedule", "schedule_timeout", "io_schedule", "io_schedule_timeout",
    "schedule_preempt_disabled", "preempt_schedule_common", "__cond_resched",
    "schedule_hrtimeout_range", "preempt_schedule_irq", "irqentry_exit",
}
HEADER = re.compile(r"\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+): (sched:\w+): (.*)")
SWITCH = re.compile(r"prev_pid=(\d+) .*prev_state=(\S+) ==> .*next_pid=(\d+)")
WAKEUP = re.compile(r"pid=(\d+) ")


def events(lines):
    """(time, event, args, kernel frames) per recorded event."""
    current = None
    for line in lines:
        if not line.strip():
            if current:
                yield current
            current = None
            continue
        if line[0] not in " \t":
            m = HEADER.match(line)
            current = (float(m.group(4)), m.group(5), m.group(6), []) if m else None
        elif current is not None:
            parts = line.split()
            if len(parts) >= 2 and not parts[1].startswith("["):
                current[3].append(parts[1])
    if current:
        yield current


def quantile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] if sorted_values else 0.0


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: perf script -F comm,tid,cpu,time,event,trace,ip,sym | offcpu.py TID")
    tid = sys.argv[1]
    left_at = None      # when it left the CPU
    reason = None
    woken_at = None
    by_reason = collections.defaultdict(lambda: {"n": 0, "ms": 0.0, "over1": 0, "blocked": 0.0, "queued": 0.0})
    queued = []
    for time, event, args, frames in events(sys.stdin):
        if event == "sched:sched_switch":
            m = SWITCH.search(args)
            if not m:
                continue
            if m.group(1) == tid:
                left_at, woken_at = time, None
                below = [f for f in frames if f not in SCHEDULER][:4]
                reason = m.group(2) + " " + " < ".join(below)
            if m.group(3) == tid and left_at is not None:
                off = (time - left_at) * 1000
                # Preempted (state R): never blocked, all of it waiting for a core.
                wait = (time - woken_at) * 1000 if woken_at is not None else (off if reason.startswith("R") else 0.0)
                entry = by_reason[reason]
                entry["n"] += 1
                entry["ms"] += off
                entry["blocked"] += off - wait
                entry["queued"] += wait
                entry["over1"] += off > 1
                queued.append(wait)
                left_at = None
        elif event == "sched:sched_wakeup" and left_at is not None and woken_at is None:
            m = WAKEUP.search(args)
            if m and m.group(1) == tid:
                woken_at = time
    total = sum(e["ms"] for e in by_reason.values())
    print(f"thread {tid}: {total:.0f} ms off CPU")
    print(f"{'times':>7} {'ms':>9} {'blocked':>9} {'run queue':>9} {'>1 ms':>6}  state, kernel frames")
    for r, e in sorted(by_reason.items(), key=lambda kv: -kv[1]["ms"])[:15]:
        print(f"{e['n']:7d} {e['ms']:9.1f} {e['blocked']:9.1f} {e['queued']:9.1f} {e['over1']:6d}  {r[:140]}")
    queued.sort()
    print(
        f"run-queue wait per return to a CPU: n {len(queued)}, p50 {quantile(queued, .5):.3f}, "
        f"p90 {quantile(queued, .9):.3f}, p99 {quantile(queued, .99):.3f}, max {queued[-1] if queued else 0:.3f} ms, "
        f"{sum(w > 0.5 for w in queued)} over 0.5 ms"
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""spend.check latency over the control socket: one REQ client, requests in sequence.

Usage: bench_spend_check.py CONTROL_ENDPOINT [COUNT]
Creates a budget (id bench-spend-check-<pid>) with two allocations, books nothing, then sends
COUNT spend.check requests and prints p50/p90/p99/max of the round trip as seen by the client.
"""
import json, os, sys, time
import zmq

endpoint = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
ctx = zmq.Context()
s = ctx.socket(zmq.REQ)
s.connect(endpoint)

def call(op, args):
    s.send(json.dumps({"op": op, "args": args}).encode())
    return json.loads(s.recv())

today = time.strftime("%Y-%m-01", time.gmtime())
bid = f"bench-spend-check-{os.getpid()}"
r = call("budget.create", {"id": bid, "name": "spend.check bench", "budgetType": "MONTHLY", "totalAmount": 1000,
                           "startDate": today, "selector": {"bench": bid},
                           "allocations": [{"platform": "OpenAI", "serviceType": "API", "allocatedAmount": 300, "priority": "HIGH"},
                                           {"platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 200, "priority": "LOW"}]})
assert r["ok"], r
requests = [json.dumps({"op": "spend.check", "args": {"platform": p, "serviceType": t, "amount": a, "metadata": {"bench": bid}}}).encode()
            for (p, t, a) in [("OpenAI", "API", "12.5"), ("Apify", "SCRAPING", "250"), ("AWS", "STORAGE", "0.01")]]
for i in range(500):  # warm-up
    s.send(requests[i % 3]); s.recv()
samples = []
allowed = 0
for i in range(count):
    t0 = time.perf_counter_ns()
    s.send(requests[i % 3])
    reply = s.recv()
    samples.append(time.perf_counter_ns() - t0)
    allowed += b'"allowed":true' in reply
samples.sort()
pct = lambda p: samples[min(len(samples) - 1, int(len(samples) * p / 100))] / 1000
print(f"spend.check x{count}: p50 {pct(50):.0f} us, p90 {pct(90):.0f} us, p99 {pct(99):.0f} us, max {samples[-1]/1000:.0f} us, "
      f"mean {sum(samples)/len(samples)/1000:.0f} us; allowed {allowed}, denied {count - allowed}")

#!/usr/bin/env python3
"""A pager: follows budgetd's alerts, never misses one, and notices when budgetd goes quiet.

    pip install pyzmq
    python3 examples/pager.py [--publish tcp://127.0.0.1:7602] [--control tcp://127.0.0.1:7603]
                              [--since-seq N] [--exit-after N] [--timeout S]

- Subscribes to `alert.` (and `status.`) and `heartbeat` on the outbound PUB socket.
- Every alert and status event carries `seq`, one sequence for both. PUB drops messages for a
  subscriber that is slow or not yet connected, so the pager tracks the last seq it handled and,
  when a message's seq jumps or a heartbeat's `lastSeq` is ahead, fetches what it missed with
  the control op `outbound.list {"sinceSeq": last}` and handles those first, in order.
- Heartbeats arrive every `intervalMs`; after three intervals without one it warns (budgetd
  stopped, or the network did), and says so again when they resume.

"Handling" here is printing one line per alert; a real pager would call its paging service.
--exit-after N stops after N alerts (for tests); --timeout S gives up (exit 1) after S seconds.
"""
import argparse
import json
import sys
import time

import zmq


class Pager:
    def __init__(self, ctx, control, since_seq):
        self.ctx = ctx
        self.control = control
        self.last_seq = since_seq
        self.alerts = 0

    def control_call(self, op, args, timeout_ms=5000):
        # A fresh REQ per call: a lost reply must not wedge REQ's send/receive lockstep.
        req = self.ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(self.control)
        try:
            req.send_json({"op": op, "args": args})
            if not req.poll(timeout_ms, zmq.POLLIN):
                raise TimeoutError(f"{op}: no reply within {timeout_ms} ms")
            reply = req.recv_json()
        finally:
            req.close()
        if not reply.get("ok"):
            raise RuntimeError(f"{op}: {reply.get('error')}")
        return reply["result"]

    def recover(self):
        """Fetches and handles everything after last_seq from the outbound log."""
        missed = self.control_call("outbound.list", {"sinceSeq": self.last_seq})
        if missed:
            print(f"recovered {len(missed)} message(s) after seq {self.last_seq}", flush=True)
        for entry in missed:
            self.handle(entry["topic"], entry["payload"])

    def handle(self, topic, payload):
        seq = payload.get("seq")
        if seq is None or seq <= self.last_seq:
            return  # already handled (a recovered message that also arrived live)
        if seq > self.last_seq + 1 and self.last_seq >= 0:
            # A gap: get the missing ones first, so alerts are handled in order.
            before = self.last_seq
            self.recover()
            if self.last_seq >= seq:
                return
            if self.last_seq == before:
                print(f"warning: seq {before + 1}..{seq - 1} are not in the outbound log", flush=True)
        self.last_seq = seq
        if topic.startswith("alert."):
            self.alerts += 1
            print(f"ALERT seq={seq} {payload.get('type')} [{payload.get('severity')}] {payload.get('message')}", flush=True)
        else:
            print(f"status seq={seq} {payload.get('budgetId')}: {payload.get('previousStatus')} -> {payload.get('status')}",
                  flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--publish", default="tcp://127.0.0.1:7602")
    parser.add_argument("--control", default="tcp://127.0.0.1:7603")
    parser.add_argument("--since-seq", type=int, default=None,
                        help="handle everything after this seq first (default: only what comes from now on)")
    parser.add_argument("--exit-after", type=int, default=0, help="exit 0 after this many alerts")
    parser.add_argument("--timeout", type=float, default=0, help="exit 1 after this many seconds")
    args = parser.parse_args()
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    for topic in (b"alert.", b"status.", b"heartbeat"):
        sub.setsockopt(zmq.SUBSCRIBE, topic)
    sub.connect(args.publish)

    pager = Pager(ctx, args.control, args.since_seq if args.since_seq is not None else -1)
    started = time.monotonic()
    last_heartbeat = None
    interval = 1.0
    silent = False
    while True:
        if args.timeout and time.monotonic() - started > args.timeout:
            print(f"timeout: {pager.alerts} alert(s) seen", file=sys.stderr)
            return 1
        if sub.poll(100, zmq.POLLIN):
            topic, body = sub.recv_multipart()[:2]
            topic = topic.decode()
            payload = json.loads(body)
            if topic == "heartbeat":
                interval = payload.get("intervalMs", 1000) / 1000
                if silent:
                    print("heartbeats resumed", flush=True)
                    silent = False
                last_heartbeat = time.monotonic()
                if pager.last_seq < 0:
                    # First heartbeat without --since-seq: start from what budgetd has now.
                    pager.last_seq = payload["lastSeq"]
                elif payload["lastSeq"] > pager.last_seq:
                    pager.recover()
            else:
                if pager.last_seq < 0:
                    pager.last_seq = payload["seq"] - 1
                pager.handle(topic, payload)
            if args.exit_after and pager.alerts >= args.exit_after:
                return 0
        elif last_heartbeat is not None and not silent and time.monotonic() - last_heartbeat > 3 * interval:
            print(f"warning: no heartbeat for {time.monotonic() - last_heartbeat:.1f} s (budgetd down or unreachable?)",
                  flush=True)
            silent = True


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)

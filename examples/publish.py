#!/usr/bin/env python3
"""Publishes usage events to budgetd: one fire-and-forget, one reliable (Lazy Pirate).

    pip install pyzmq
    python3 examples/publish.py [--ingest tcp://127.0.0.1:7600] [--ingest-ack tcp://127.0.0.1:7601]
                                [--budget b_…] [--cost 0.0125] [--retries 5] [--timeout-ms 2000]

Fire-and-forget (PUB → the daemon's SUB) is cheapest but may lose messages: nothing tells the
publisher. Give each event a per-source `seq` and budgetd counts the gaps (`stats.gaps`,
`budgetd_sequence_gaps_total`).

Reliable (DEALER → the daemon's ROUTER) is answered only after the event is committed. The
Lazy Pirate pattern: send, wait for the reply with a timeout, and on timeout close the socket
(its queue may hold the unanswered request and a late reply), open a fresh one and send again.
Resending is safe: budgetd deduplicates by (source, id) and answers DUPLICATE with the state it
stored, so an event is never booked twice. Exit status 0 when the reliable event was
acknowledged, 1 when every retry timed out.
"""
import argparse
import json
import sys
import time
import uuid

import zmq


def send_reliably(ctx, endpoint, topic, event, retries, timeout_ms):
    """Lazy Pirate: returns the acknowledgement (a dict), or None after `retries` timeouts."""
    body = json.dumps(event).encode()
    for attempt in range(1, retries + 1):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        try:
            # A DEALER talking to a ROUTER sends an empty delimiter frame first (like REQ does).
            sock.send_multipart([b"", topic, body])
            if sock.poll(timeout_ms, zmq.POLLIN):
                reply = json.loads(sock.recv_multipart()[-1])
                if reply.get("id") == event["id"]:
                    return reply
            print(f"no acknowledgement within {timeout_ms} ms (attempt {attempt}/{retries}); retrying on a new socket",
                  file=sys.stderr)
        finally:
            sock.close()
        # Back off a little more each time, so a restarting daemon is not hammered.
        time.sleep(min(0.1 * 2 ** attempt, 2.0))
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ingest", default="tcp://127.0.0.1:7600")
    parser.add_argument("--ingest-ack", default="tcp://127.0.0.1:7601")
    parser.add_argument("--budget", help="budgetId to put on the events (else the daemon routes them)")
    parser.add_argument("--cost", default="0.0125", help="cost of the reliable event")
    parser.add_argument("--source", default="example")
    parser.add_argument("--retries", type=int, default=5)
    parser.add_argument("--timeout-ms", type=int, default=2000)
    args = parser.parse_args()
    ctx = zmq.Context()

    # Fire-and-forget: PUB. Messages sent before the daemon's subscription arrives are dropped
    # by ZeroMQ (the "slow joiner"), so wait briefly after connecting.
    pub = ctx.socket(zmq.PUB)
    pub.connect(args.ingest)
    time.sleep(0.3)
    event = {"id": str(uuid.uuid4()), "source": args.source, "seq": 1, "platform": "OpenAI", "serviceType": "API",
             "model": "gpt-4o", "usage": {"inputTokens": 1200, "outputTokens": 300}}
    if args.budget:
        event["budgetId"] = args.budget
    pub.send_multipart([b"usage.openai", json.dumps(event).encode()])
    print(f"published {event['id']} (fire-and-forget)")

    event = {"id": str(uuid.uuid4()), "source": args.source, "seq": 2, "platform": "Apify", "serviceType": "SCRAPING",
             "cost": args.cost, "apifyRunId": "run-1"}
    if args.budget:
        event["budgetId"] = args.budget
    ack = send_reliably(ctx, args.ingest_ack, b"usage.apify", event, args.retries, args.timeout_ms)
    pub.close(linger=1000)
    ctx.term()
    if ack is None:
        print(f"no acknowledgement for {event['id']} after {args.retries} tries", file=sys.stderr)
        return 1
    print(f"{ack['status']} {ack['id']} state={ack['state']}" + (f" reason={ack['reason']}" if ack.get("reason") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

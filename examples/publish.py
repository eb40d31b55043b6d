#!/usr/bin/env python3
"""Publishes a few usage events to budgetd: one fire-and-forget, one acknowledged.

    pip install pyzmq
    python3 examples/publish.py [--ingest tcp://127.0.0.1:7600] [--ingest-ack tcp://127.0.0.1:7601]
"""
import argparse
import json
import time
import uuid

import zmq

parser = argparse.ArgumentParser()
parser.add_argument("--ingest", default="tcp://127.0.0.1:7600")
parser.add_argument("--ingest-ack", default="tcp://127.0.0.1:7601")
args = parser.parse_args()
ctx = zmq.Context()

# Fire-and-forget: PUB. Connecting takes a moment; messages sent before the daemon's
# subscription arrives are dropped by ZeroMQ (the "slow joiner"), so wait briefly.
pub = ctx.socket(zmq.PUB)
pub.connect(args.ingest)
time.sleep(0.3)
event = {"id": str(uuid.uuid4()), "source": "example", "platform": "OpenAI", "serviceType": "API",
         "model": "gpt-4o", "usage": {"inputTokens": 1200, "outputTokens": 300}}
pub.send_multipart([b"usage.openai", json.dumps(event).encode()])

# Acknowledged: DEALER. The reply comes only after the event is committed; resend on timeout.
dealer = ctx.socket(zmq.DEALER)
dealer.connect(args.ingest_ack)
event = {"id": str(uuid.uuid4()), "source": "example", "platform": "Apify", "serviceType": "SCRAPING",
         "cost": "0.0125", "apifyRunId": "run-1"}
for attempt in range(5):
    dealer.send_multipart([b"usage.apify", json.dumps(event).encode()])
    if dealer.poll(2000):
        print(json.loads(dealer.recv_multipart()[-1]))
        break
else:
    print("no acknowledgement after 5 tries")
pub.close(linger=1000)
dealer.close(linger=0)

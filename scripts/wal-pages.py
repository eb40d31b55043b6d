#!/usr/bin/env python3
"""Pages per transaction in a budgetd write-ahead log, by table or index (issue 8).

    scripts/wal-pages.py DB

Reads the frames of DB-wal (as a daemon killed with SIGKILL leaves it: the frames since the
log last started over), groups them into transactions at each commit frame, and names each
page's table or index with SQLite's dbstat (on a copy, so the log is not checkpointed away).
Prints the average pages per transaction for each. docs/benchmarks.md, "Eleventh session".
"""
import collections
import shutil
import sqlite3
import struct
import sys
import tempfile

db = sys.argv[1]
data = open(db + "-wal", "rb").read()
_, _, page_size, _, salt1, salt2, _, _ = struct.unpack(">IIIIIIII", data[:32])
frames = []
offset = 32
while offset + 24 + page_size <= len(data):
    page, commit, s1, s2 = struct.unpack(">IIII", data[offset:offset + 16])
    if (s1, s2) != (salt1, salt2):
        break  # frames of an earlier round of the log
    frames.append((page, commit))
    offset += 24 + page_size

with tempfile.TemporaryDirectory() as scratch:
    copy = scratch + "/copy.db"
    shutil.copy(db, copy)
    shutil.copy(db + "-wal", copy + "-wal")
    owner = {page: name for name, page in sqlite3.connect(copy).execute("SELECT name, pageno FROM dbstat")}

transactions, current = [], []
for page, commit in frames:
    current.append(page)
    if commit:
        transactions.append(current)
        current = []
print(f"frames {len(frames)}, transactions {len(transactions)}")
if transactions:
    pages = collections.Counter(owner.get(p, "?") for t in transactions for p in t)
    for name, count in pages.most_common():
        print(f"  {name:40s} {count / len(transactions):7.2f} pages per transaction")
    print(f"  {'all':40s} {sum(pages.values()) / len(transactions):7.2f}")

#!/usr/bin/env python3
"""Generates a large dbackup manifest for scale measurements: ROWS backed-up
versions over DISCS discs, in the schema dbackup writes, as the manifest of
the newest disc in a folder standing for a mounted disc (files are not
written: find, lost and restore plans need only the manifest).

usage: gen-manifest.py OUT_DIR [ROWS] [DISCS]
"""
import os
import random
import sqlite3
import sys
import uuid

out = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
discs = int(sys.argv[3]) if len(sys.argv) > 3 else 300
os.makedirs(out, exist_ok=True)
path = os.path.join(out, "manifest.db")
if os.path.exists(path):
    os.remove(path)
rng = random.Random(42)
c = sqlite3.connect(path)
c.executescript("""
CREATE TABLE discs(id INTEGER PRIMARY KEY, started INTEGER, completed INTEGER, available BOOLEAN);
CREATE TABLE files(id INTEGER PRIMARY KEY, filename TEXT, timestamp INTEGER, md5 TEXT,
                   size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT, copied BOOLEAN);
CREATE INDEX filenames ON files(filename, copied);
CREATE INDEX files_disc ON files(disc_id);
CREATE TABLE settings(key TEXT PRIMARY KEY, value);
CREATE TABLE deletions(id INTEGER PRIMARY KEY, filename TEXT NOT NULL, deleted REAL NOT NULL, file_id INTEGER);
CREATE INDEX deletions_filename ON deletions(filename);
CREATE TABLE images(disc_id INTEGER PRIMARY KEY, size INTEGER NOT NULL, verified REAL NOT NULL, ecc TEXT);
PRAGMA user_version=1;
""")
c.executemany("INSERT INTO settings VALUES (?, ?)", [
    ("uuid", str(uuid.UUID(int=rng.getrandbits(128)))), ("name", "Scale test"),
    ("watched", "/srv/photos"), ("disc_size", 18768986112), ("excludes", "[]")])
t0 = 1_300_000_000.0
span = 400_000_000.0
c.executemany("INSERT INTO discs VALUES (?, ?, ?, 1)",
              [(d, t0 + span * (d - 1) / discs, t0 + span * d / discs - 1) for d in range(1, discs + 1)])

def gen():
    names = []
    for i in range(1, rows + 1):
        if names and rng.random() < 0.1:
            name = rng.choice(names)          # a new version of an old file
            desc = "Size changed"
        else:
            name = "/%d/album-%04d/IMG_%07d.jpg" % (2010 + i * 15 // rows, i // 200, i)
            names.append(name)
            desc = "New file"
        disc = 1 + (i - 1) * discs // rows
        ts = t0 + span * (i - 0.5) / rows
        yield (i, name, ts, "%032x" % rng.getrandbits(128), rng.randrange(1, 20_000_000),
               ts - 3600.25, disc, desc)

c.executemany("INSERT INTO files VALUES (?,?,?,?,?,?,?,?,1)", gen())
dels = c.execute("SELECT filename, max(id) FROM files WHERE id % 97 = 0 GROUP BY filename").fetchall()
c.executemany("INSERT INTO deletions(filename, deleted, file_id) VALUES (?, ?, ?)",
              [(n, t0 + span, i) for n, i in dels])
c.commit()
c.execute("VACUUM")
c.close()
print(path, os.path.getsize(path), "bytes")

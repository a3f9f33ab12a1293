#!/usr/bin/env python3
"""Fills a freshly made dbackup workdir (after `dbackup-stage init WORKDIR
TREE`, with TREE empty) and its watched folder for scale measurements:
FILES small files (0 to 64 bytes) in TREE, FILES_PER_DIR to a folder, and one
backed-up version of each in the catalogue, spread over DISCS discs in
staging order. Discs 1 to DISCS-1 are closed, their images recorded as built
and read back and their staged copies freed; disc DISCS is open and holds its
staged copies. Sizes and mtimes in the catalogue are those the filesystem
reports, stored as `dbackup-stage` stores them (REAL seconds:
secs + nanos / 1e9); each version has its `attrs` row (mode, owner, exact
mtime) and every folder below the watched one its `entries` row (kind
'dir'), as the scan records them (src/catalog/tree.rs, docs/tree.md), so
`monitor` on the unchanged tree has nothing to record and prints nothing.

usage: gen-workdir.py WORKDIR FILES DISCS [FILES_PER_DIR]
"""
import grp
import hashlib
import os
import pwd
import random
import sqlite3
import sys

SECTOR = 2048
PER_FILE_OVERHEAD = 512  # src/disc.rs: what one file adds to an image
FIXED_OVERHEAD = 128 << 10


class Owners:
    """Mode, owner and exact mtime as the scan records them (src/scan.rs):
    the owner's and group's names looked up once per number, None when the
    number has no name here."""

    def __init__(self):
        self.users, self.groups = {}, {}

    def name(self, cache, lookup, n):
        if n not in cache:
            try:
                cache[n] = lookup(n)[0]
            except KeyError:
                cache[n] = None
        return cache[n]

    def attrs(self, st):
        """(mode, uid, gid, owner, grp, mtime_sec, mtime_nsec) of a stat."""
        secs, nanos = divmod(st.st_mtime_ns, 10**9)
        return (st.st_mode & 0o7777, st.st_uid, st.st_gid,
                self.name(self.users, pwd.getpwuid, st.st_uid),
                self.name(self.groups, grp.getgrgid, st.st_gid), secs, nanos)


def main():
    workdir = sys.argv[1]
    files = int(sys.argv[2])
    discs = int(sys.argv[3])
    per_dir = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    if files < discs or discs < 1:
        sys.exit("gen-workdir.py: need at least one file per disc")
    db_path = os.path.join(workdir, "manifest.db")
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    (watched,) = db.execute("SELECT value FROM settings WHERE key='watched'").fetchone()
    (nfiles,) = db.execute("SELECT count(*) FROM files").fetchone()
    (ndiscs,) = db.execute("SELECT count(*) FROM discs").fetchone()
    if nfiles != 0 or ndiscs != 1 or os.listdir(watched):
        sys.exit("gen-workdir.py: wants a fresh workdir whose watched folder is empty")
    tables = {n for (n,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name IN ('attrs', 'entries')")}
    if tables != {"attrs", "entries"}:
        sys.exit("gen-workdir.py: the workdir has no attrs and entries tables"
                 " (made by a dbackup-stage that records no tree?)")
    (nentries,) = db.execute("SELECT count(*) FROM entries").fetchone()
    if nentries != 0:
        sys.exit("gen-workdir.py: wants a fresh workdir (it has entries rows)")

    rng = random.Random(42)
    pool = os.urandom(4096)
    # Disc d was open for one day, the last one until now; each file was
    # modified between one hour and thirty days before it was staged.
    day = 86400
    (now,) = db.execute("SELECT started FROM discs WHERE id=1").fetchone()
    t0 = int(now) - (discs - 1) * day
    disc_files = [0] * (discs + 1)
    disc_sectors = [0] * (discs + 1)
    open_disc = discs
    staged_root = os.path.join(workdir, "staging", "disc-%04d" % open_disc, "files")

    owners = Owners()
    # Per folder below the watched one (catalogue name): the latest mtime
    # of a file in it (ns) and when the last of them was staged, to give
    # the folder the mtime and recorded version its last file left it.
    folders = {}

    def chunks(chunk=10000):
        made_dirs = set()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        files_rows, attrs_rows = [], []
        for i in range(files):
            fid = i + 1
            d = i // per_dir
            rel = "a%03d/b%05d/f%07d.dat" % (d // 100, d, i)
            folder = os.path.join(watched, os.path.dirname(rel))
            if folder not in made_dirs:
                os.makedirs(folder, exist_ok=True)
                made_dirs.add(folder)
            size = rng.randrange(65)
            start = rng.randrange(len(pool) - 64)
            data = pool[start:start + size]
            disc = 1 + i * discs // files
            ts = t0 + (disc - 1) * day + day * ((i * discs) % files) / files
            mtime_ns = int(ts * 1e9) - rng.randrange(3600 * 10**9, 30 * day * 10**9)
            fd = os.open(os.path.join(watched, rel), flags, 0o644)
            try:
                if data:
                    os.write(fd, data)
                os.utime(fd, ns=(mtime_ns, mtime_ns))
                st = os.fstat(fd)
            finally:
                os.close(fd)
            if disc == open_disc:
                sub = os.path.join(staged_root, str(fid // 256))
                if sub not in made_dirs:
                    os.makedirs(sub, exist_ok=True)
                    made_dirs.add(sub)
                with open(os.path.join(sub, str(fid)), "wb") as f:
                    f.write(data)
            ns = st.st_mtime_ns
            # As the scan computes it: secs as f64 + nanos as f64 / 1e9.
            secs, nanos = divmod(ns, 10**9)
            mtime = float(secs) + float(nanos) / 1e9
            disc_files[disc] += 1
            disc_sectors[disc] += (st.st_size + SECTOR - 1) // SECTOR * SECTOR
            files_rows.append((fid, "/" + rel, ts, hashlib.md5(data).hexdigest(), st.st_size,
                               mtime, disc, "New file"))
            attrs_rows.append((fid,) + owners.attrs(st))
            parent = "/" + os.path.dirname(rel)
            last_ns, last_ts = folders.get(parent, (0, 0.0))
            folders[parent] = (max(last_ns, ns), max(last_ts, ts))
            if len(files_rows) == chunk:
                yield files_rows, attrs_rows
                files_rows, attrs_rows = [], []
        if files_rows:
            yield files_rows, attrs_rows

    db.execute("BEGIN")
    for files_rows, attrs_rows in chunks():
        db.executemany("INSERT INTO files(id, filename, timestamp, md5, size, mtime, disc_id,"
                       " desc, copied) VALUES (?,?,?,?,?,?,?,?,1)", files_rows)
        db.executemany("INSERT INTO attrs(file_id, mode, uid, gid, owner, grp, mtime_sec,"
                       " mtime_nsec) VALUES (?,?,?,?,?,?,?,?)", attrs_rows)
    # Every folder below the watched one, as the scan records it: an
    # `entries` row of kind 'dir' (target NULL, not deleted) with its mode,
    # owner and exact mtime. Each is given the mtime of its latest file (a
    # folder of folders, that of its latest folder) and is recorded as
    # seen by the run that staged its last file: the version a first
    # staging and the runs after it would have left.
    for name in sorted(folders):
        top = name.rsplit("/", 1)[0]
        if top:
            last_ns, last_ts = folders[name]
            top_ns, top_ts = folders.get(top, (0, 0.0))
            folders[top] = (max(top_ns, last_ns), max(top_ts, last_ts))
    entries_rows = []
    for name in sorted(folders):  # a folder before what it holds, as the walk goes
        last_ns, last_ts = folders[name]
        path = watched + name
        os.utime(path, ns=(last_ns, last_ns), follow_symlinks=False)
        st = os.lstat(path)
        entries_rows.append((name, "dir", last_ts) + owners.attrs(st))
    db.executemany("INSERT INTO entries(filename, kind, timestamp, deleted, target, mode, uid,"
                   " gid, owner, grp, mtime_sec, mtime_nsec)"
                   " VALUES (?,?,?,NULL,NULL,?,?,?,?,?,?,?)", entries_rows)
    db.execute("DELETE FROM discs")
    db.executemany(
        "INSERT INTO discs(id, started, completed, available) VALUES (?, ?, ?, 1)",
        [(d, t0 + (d - 1) * day, None if d == open_disc else t0 + d * day - 1)
         for d in range(1, discs + 1)])
    # Closed discs: images built and read back an hour after closing (their
    # .iso files burnt and removed since), staged copies freed.
    db.executemany(
        "INSERT INTO images(disc_id, size, verified, ecc) VALUES (?, ?, ?, NULL)",
        [(d, disc_sectors[d] + disc_files[d] * PER_FILE_OVERHEAD + FIXED_OVERHEAD,
          t0 + d * day + 3600) for d in range(1, open_disc)])
    db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES ('last_run', ?)", (now,))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    if open_disc != 1:
        os.rmdir(os.path.join(workdir, "staging", "disc-0001", "files"))
        os.rmdir(os.path.join(workdir, "staging", "disc-0001"))
    os.makedirs(staged_root, exist_ok=True)
    print("%d files in %d folders in %s, %d discs (%d closed), catalogue %d bytes" % (
        files, len(entries_rows), watched, discs, discs - 1, os.path.getsize(db_path)))


main()

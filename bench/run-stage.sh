#!/usr/bin/env bash
# Benchmarks of `dbackup-stage monitor` against the plain Unix tools doing the
# same work (find, cp + sync + md5sum, md5sum). Run by hand; see README.md.
#
#   bench/run-stage.sh                          # full size (several minutes)
#   FILES=2000 BIG_MB=100 bench/run-stage.sh    # quick smoke run
#
# Environment:
#   FILES=100000       small files in the tree (rescan and first staging)
#   FILE_SIZE=2048     bytes per small file
#   FILES_PER_DIR=100  small files per folder (100000 files -> 1000 folders)
#   BIG_MB=2048        total MiB of the large-file tree
#   BIG_FILE_MB=10     MiB per large file (2048/10 -> 205 files)
#   WARMUP=3           hyperfine warmup runs of the rescan
#   RUNS=3             hyperfine runs of each staging benchmark
#   BENCH_DIR=/tmp/dbackup-bench   where the data goes (its filesystem matters)
#   KEEP=1             keep the generated data instead of deleting it
#   CARGO_TARGET_DIR   where cargo builds (default: target/ of the repo)
#
# Exits 0 whether the goals are met or not; the final table says which.
#
# Nothing is deleted until the end: each staging run's output is moved aside
# into $RUN/trash instead. On ext4 without a journal the inode allocator skips
# inodes freed in the last 60 to 300 seconds, scanning past them one by one,
# so deleting 100,000 files just before a timed run makes that run's file
# creations several times slower (seen in `perf` as recently_deleted under
# ext4_create) and measures the previous run's cleanup, not the copy. The
# full-size run therefore needs about 12 GB free in BENCH_DIR.

set -euo pipefail

FILES=${FILES:-100000}
FILE_SIZE=${FILE_SIZE:-2048}
FILES_PER_DIR=${FILES_PER_DIR:-100}
BIG_MB=${BIG_MB:-2048}
BIG_FILE_MB=${BIG_FILE_MB:-10}
WARMUP=${WARMUP:-3}
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/dbackup-bench}
KEEP=${KEEP:-0}
DISC_SIZE=bd100

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

say() { printf '\n== %s\n' "$*"; }

for tool in hyperfine python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 2; }
done
HAVE_TIME=1
if [[ ! -x /usr/bin/time ]]; then
    HAVE_TIME=0
    echo "warning: /usr/bin/time not found (Debian package 'time'): peak memory will not be measured" >&2
fi

# ---------------------------------------------------------------- build
say "Building (release)"
(cd "$REPO" && CARGO_TARGET_DIR=$TARGET cargo build --release --bin dbackup-stage)
BIN=$TARGET/release/dbackup-stage
[[ -x $BIN ]] || { echo "error: $BIN not built" >&2; exit 2; }

# ---------------------------------------------------------------- work area
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
RUN=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
cleanup() {
    if [[ $KEEP == 1 ]]; then
        echo "kept: $RUN"
    else
        echo "removing $RUN"
        rm -rf "$RUN"
        rmdir "$BENCH_DIR" 2>/dev/null || true
    fi
}
trap cleanup EXIT
TRASH=$RUN/trash
mkdir -p "$TRASH"
# Moves its arguments (those that exist) into a fresh folder of $TRASH.
set_aside() {
    local t
    t=$(mktemp -d "$TRASH/XXXXXX")
    for d in "$@"; do
        if [[ -e $d ]]; then mv "$d" "$t/"; fi
    done
}
# The same, as a command line for hyperfine's --prepare (run by sh).
set_aside_cmd() {
    printf 't=$(mktemp -d %s/XXXXXX) && for d in %s; do if [ -e "$d" ]; then mv "$d" "$t/"; fi; done; sync' \
        "$TRASH" "$*"
}
# Warns when other processes use the CPUs: the comparisons assume an idle machine.
check_idle() {
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    if python3 -c 'import os,sys; sys.exit(0 if float(sys.argv[1]) > 0.5 * os.cpu_count() else 1)' "$load"; then
        echo "WARNING: the machine is busy (load $load on $(nproc) CPUs): results are unreliable" >&2
        BUSY=1
    fi
}
BUSY=0
RESULTS=$RUN/results.tsv
: >"$RESULTS"
# record NAME DBACKUP_VALUE REFERENCE_VALUE   (seconds, or bytes for rss)
record() { printf '%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

# ---------------------------------------------------------------- machine
say "Machine"
echo "nproc: $(nproc)"
free -g
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "kernel: $(uname -r)"
echo "bench dir: $BENCH_DIR"
df -hT "$BENCH_DIR"
read -r fs_src fs_type < <(findmnt -no SOURCE,FSTYPE -T "$BENCH_DIR" 2>/dev/null || echo "? ?")
echo "mount: $(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$BENCH_DIR" 2>/dev/null || echo '?')"
if [[ $fs_type == ext4 && -r /sys/fs/ext4/$(basename "$fs_src")/journal_task ]]; then
    if [[ $(cat "/sys/fs/ext4/$(basename "$fs_src")/journal_task") == "<none>" ]]; then
        echo "ext4 journal: none"
    else
        echo "ext4 journal: yes"
    fi
fi
need_kb=$(( (FILES * ((FILE_SIZE + 4095) / 4096 * 4) * (2 * RUNS + 2)) + BIG_MB * 1024 * (RUNS + 1) ))
avail_kb=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
echo "space: needs about $((need_kb >> 20)) GiB, $((avail_kb >> 20)) GiB available"
if (( avail_kb < need_kb * 11 / 10 )); then
    echo "error: not enough free space in $BENCH_DIR" >&2
    exit 2
fi
echo "dbackup: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?') ($BIN)"
echo "tools: $(hyperfine --version), $(md5sum --version | head -1), $(cp --version | head -1)"
echo "sizes: FILES=$FILES FILE_SIZE=$FILE_SIZE FILES_PER_DIR=$FILES_PER_DIR BIG_MB=$BIG_MB BIG_FILE_MB=$BIG_FILE_MB"

# median in seconds of command number $2 in hyperfine's JSON export $1
median() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["median"])' "$1" "$2"
}

# peak RSS in bytes of a command, from /usr/bin/time -v; its stdout goes to $1
peak_rss() {
    local out=$1; shift
    local log=$RUN/time.log
    /usr/bin/time -v -o "$log" "$@" >"$out"
    awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 * 1024 }' "$log"
}

# ---------------------------------------------------------------- small tree
SMALL=$RUN/small
say "Generating $FILES files of $FILE_SIZE bytes in $SMALL"
python3 - "$SMALL" "$FILES" "$FILE_SIZE" "$FILES_PER_DIR" <<'EOF'
import os, sys
root, n, size, per_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
made = set()
for i in range(n):
    d = i // per_dir
    folder = os.path.join(root, f"a{d // 100:03d}", f"b{d:05d}")
    if folder not in made:
        os.makedirs(folder, exist_ok=True)
        made.add(folder)
    with open(os.path.join(folder, f"f{i:07d}.dat"), "wb") as f:
        f.write(os.urandom(size))
print(f"{n} files in {len(made)} folders")
EOF
sync

# ---------------------------------------------------------------- 1 + 4: rescan
say "1. Rescan of an unchanged tree of $FILES files: dbackup monitor vs find"
check_idle
SCAN_WD=$RUN/scan-wd
"$BIN" -w "$SCAN_WD" init "$SMALL" --disc-size "$DISC_SIZE" >/dev/null
if [[ $HAVE_TIME == 1 ]]; then
    rss=$(peak_rss "$RUN/first.out" "$BIN" -w "$SCAN_WD" monitor --no-progress)
    record mem_first "$rss" -
else
    "$BIN" -w "$SCAN_WD" monitor --no-progress >"$RUN/first.out"
fi
staged=$(wc -l <"$RUN/first.out")
echo "first staging printed $staged lines"
if [[ $staged -ne $FILES ]]; then
    echo "warning: expected $FILES staged files, got $staged" >&2
fi
"$BIN" -w "$SCAN_WD" monitor --no-progress >"$RUN/rescan.out"
if [[ -s $RUN/rescan.out ]]; then
    echo "warning: a rescan of the unchanged tree printed something:" >&2
    head -5 "$RUN/rescan.out" >&2
fi
sync

hyperfine -N --warmup "$WARMUP" --export-json "$RUN/rescan.json" \
    -n "dbackup monitor (rescan)" "$BIN -w $SCAN_WD monitor --no-progress" \
    -n "find -printf" "find $SMALL -type f -printf '%s %T@\n'"
record rescan "$(median "$RUN/rescan.json" 0)" "$(median "$RUN/rescan.json" 1)"

if [[ $HAVE_TIME == 1 ]]; then
    rss=$(peak_rss /dev/null "$BIN" -w "$SCAN_WD" monitor --no-progress)
    record mem_rescan "$rss" -
fi
set_aside "$SCAN_WD"

# ---------------------------------------------------------------- 2: first staging, small files
say "2. First staging of $FILES files of $FILE_SIZE bytes: dbackup init+monitor vs cp -a + sync + md5sum"
WD=$RUN/wd
DEST=$RUN/dest
check_idle
hyperfine --runs "$RUNS" --export-json "$RUN/small.json" \
    --prepare "$(set_aside_cmd "$WD" "$DEST")" \
    -n "dbackup init+monitor" \
    "$BIN -w $WD init $SMALL --disc-size $DISC_SIZE >/dev/null && $BIN -w $WD monitor --no-progress >/dev/null" \
    -n "cp -a + sync + md5sum" \
    "cp -a $SMALL $DEST && sync && (cd $DEST && find . -type f -print0 | xargs -0 md5sum >/dev/null)"
record small "$(median "$RUN/small.json" 0)" "$(median "$RUN/small.json" 1)"
set_aside "$WD" "$DEST" "$SMALL"

# ---------------------------------------------------------------- 3: first staging, large files
BIG=$RUN/big
nbig=$(( (BIG_MB + BIG_FILE_MB - 1) / BIG_FILE_MB ))
say "Generating $nbig files of $BIG_FILE_MB MiB of random data in $BIG"
mkdir -p "$BIG"
for ((i = 0; i < nbig; i++)); do
    head -c $((BIG_FILE_MB << 20)) /dev/urandom >"$BIG/$(printf 'big%04d.bin' "$i")"
done
sync
big_bytes=$(du -sb "$BIG" | cut -f1)
echo "$nbig files, $big_bytes bytes"

say "3. First staging of $big_bytes bytes in $nbig files: dbackup init+monitor vs md5sum"
# Read the files once so both sides start from a warm page cache.
cat "$BIG"/* >/dev/null
check_idle
hyperfine --runs "$RUNS" --export-json "$RUN/big.json" \
    --prepare "$(set_aside_cmd "$WD")" \
    -n "dbackup init+monitor" \
    "$BIN -w $WD init $BIG --disc-size $DISC_SIZE >/dev/null && $BIN -w $WD monitor --no-progress >/dev/null" \
    -n "md5sum" \
    "md5sum $BIG/* >/dev/null"
record big "$(median "$RUN/big.json" 0)" "$(median "$RUN/big.json" 1)"

# ---------------------------------------------------------------- table
say "Results (medians)"
python3 - "$RESULTS" "$FILES" "$big_bytes" "$BUSY" <<'EOF'
import sys
path, files, big_bytes, busy = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
rows = {}
for line in open(path):
    name, a, b = line.rstrip("\n").split("\t")
    rows[name] = (float(a), None if b == "-" else float(b))

MiB = 1 << 20
table = []
def t(sec):
    return f"{sec * 1000:.1f} ms" if sec < 1 else f"{sec:.2f} s"
def row(measure, ours, ref, ratio, goal, ok):
    table.append((measure, ours, ref, ratio, goal, "PASS" if ok else "FAIL"))

if "rescan" in rows:
    a, b = rows["rescan"]
    r = a / b
    row(f"1. rescan, {files} unchanged files", t(a), f"{t(b)} (find)",
        f"{r:.2f}", "<= 3", r <= 3)
if "small" in rows:
    a, b = rows["small"]
    r = a / b
    row(f"2. first staging, {files} small files", t(a), f"{t(b)} (cp+sync+md5sum)",
        f"{r:.2f}", "<= 2", r <= 2)
if "big" in rows:
    a, b = rows["big"]
    ta, tb = big_bytes / a / 1e6, big_bytes / b / 1e6
    r = ta / tb
    row(f"3. first staging, {big_bytes / MiB:.0f} MiB in large files",
        f"{t(a)} = {ta:.0f} MB/s", f"{t(b)} = {tb:.0f} MB/s (md5sum)",
        f"{r:.2f}", ">= 1.0 (throughput)", r >= 1.0)
for key, label in (("mem_first", f"4. peak RSS, first staging of {files} files"),
                   ("mem_rescan", f"4. peak RSS, rescan of {files} files")):
    if key in rows:
        a = rows[key][0]
        row(label, f"{a / MiB:.1f} MiB", "-", "-", "< 100 MiB", a < 100 * MiB)
    else:
        table.append((label, "not measured (no /usr/bin/time)", "-", "-", "< 100 MiB", "SKIP"))

head = ("measurement", "dbackup", "reference", "ratio", "goal", "result")
widths = [max(len(r[i]) for r in table + [head]) for i in range(len(head))]
fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
print(fmt(head))
print("  ".join("-" * w for w in widths))
for r in table:
    print(fmt(r))
fails = sum(r[5] == "FAIL" for r in table)
print()
print(f"{len(table) - fails} of {len(table)} goals met" if fails == 0
      else f"{fails} of {len(table)} goals FAILED")
if busy:
    print("WARNING: the machine was busy during the run: results are unreliable")
EOF
exit 0

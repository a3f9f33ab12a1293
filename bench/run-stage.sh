#!/usr/bin/env bash
# Benchmarks of `dbackup-stage monitor` against the plain Unix tools doing the
# same work (find, cp + sync + md5sum, md5sum). Run by hand; see README.md.
#
#   bench/run-stage.sh                  # full size (several minutes)
#   BENCH_QUICK=1 bench/run-stage.sh    # quick smoke run (FILES=2000 BIG_MB=100)
#
# Environment:
#   FILES=100000       small files in the tree (rescan and first staging)
#   FILE_SIZE=2048     bytes per small file
#   FILES_PER_DIR=100  small files per folder (100000 files -> 1000 folders)
#   BIG_MB=2048        total MiB of the large-file tree
#   BIG_FILE_MB=10     MiB per large file (2048/10 -> 205 files)
#   WARMUP=3           warm-up runs of the rescan (both sides)
#   PAIRS=5            interleaved pairs (reference, dbackup) of each
#                      comparison; the table gives the median pair ratio
#                      and the spread of the pair ratios
#   BENCH_DIR=target/bench   where the data goes (its filesystem matters)
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
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $BENCH_QUICK == 1 ]]; then
    FILES=${FILES:-2000}
    BIG_MB=${BIG_MB:-100}
    WARMUP=${WARMUP:-1}
    PAIRS=${PAIRS:-3}
fi
FILES=${FILES:-100000}
FILE_SIZE=${FILE_SIZE:-2048}
FILES_PER_DIR=${FILES_PER_DIR:-100}
BIG_MB=${BIG_MB:-2048}
BIG_FILE_MB=${BIG_FILE_MB:-10}
WARMUP=${WARMUP:-3}
PAIRS=${PAIRS:-5}
DISC_SIZE=bd100

need_tools python3 awk
build_release
BIN=$B/dbackup-stage
make_run_dir stage
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
# The same, as a command line to run before each timed run (by sh).
set_aside_cmd() {
    printf 't=$(mktemp -d %s/XXXXXX) && for d in %s; do if [ -e "$d" ]; then mv "$d" "$t/"; fi; done; sync' \
        "$TRASH" "$*"
}

# ---------------------------------------------------------------- machine
say "Machine"
machine "$BENCH_DIR"
need_kb=$(( (FILES * ((FILE_SIZE + 4095) / 4096 * 4) * (2 * PAIRS + 2)) + BIG_MB * 1024 * (PAIRS + 2) ))
avail_kb=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
echo "space: needs about $((need_kb >> 20)) GiB, $((avail_kb >> 20)) GiB available"
if (( avail_kb < need_kb * 11 / 10 )); then
    echo "error: not enough free space in $BENCH_DIR" >&2
    exit 2
fi
echo "tools: $(md5sum --version | head -1), $(cp --version | head -1)"
echo "sizes: FILES=$FILES FILE_SIZE=$FILE_SIZE FILES_PER_DIR=$FILES_PER_DIR BIG_MB=$BIG_MB BIG_FILE_MB=$BIG_FILE_MB"

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
    first = folder not in made
    if first:
        os.makedirs(folder, exist_ok=True)
        made.add(folder)
    path = os.path.join(folder, f"f{i:07d}.dat")
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    # The tree as users have it: a symbolic link in every folder, and in
    # every tenth an empty folder and a second name of a file.
    if first:
        os.symlink(os.path.basename(path), os.path.join(folder, "link"))
        if d % 10 == 0:
            os.makedirs(os.path.join(folder, "empty"))
            os.link(path, os.path.join(folder, "z-hard.dat"))
print(f"{n} files in {len(made)} folders, a link in each")
EOF
sync

# ---------------------------------------------------------------- 1 + 4: rescan
say "1. Rescan of an unchanged tree of $FILES files: dbackup monitor vs find"
check_idle
SCAN_WD=$RUN/scan-wd
"$BIN" -w "$SCAN_WD" init "$SMALL" --disc-size "$DISC_SIZE" >/dev/null
rss_first=$(peak_rss "$RUN/first.out" "$BIN" -w "$SCAN_WD" monitor --no-progress)
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

# Warm caches, then interleaved pairs.
for ((i = 0; i < WARMUP; i++)); do
    "$BIN" -w "$SCAN_WD" monitor --no-progress >/dev/null
    find "$SMALL" -type f -printf '%s %T@\n' >/dev/null
done
pairs "$RUN/rescan.pairs" "$PAIRS" "" \
    "find $SMALL -type f -printf '%s %T@\n'" \
    "$BIN -w $SCAN_WD monitor --no-progress"
rss=$(peak_rss "$RUN/rescan.out" "$BIN" -w "$SCAN_WD" monitor --no-progress)
record_pairs "rescan of $FILES unchanged files" "$RUN/rescan.pairs" \
    "find -printf" time "<=3" "$rss"
set_aside "$SCAN_WD"

# ---------------------------------------------------------------- 2: first staging, small files
say "2. First staging of $FILES files of $FILE_SIZE bytes: dbackup init+monitor vs cp -a + sync + md5sum"
WD=$RUN/wd
DEST=$RUN/dest
check_idle
pairs "$RUN/small.pairs" "$PAIRS" "$(set_aside_cmd "$WD" "$DEST")" \
    "cp -a $SMALL $DEST && sync && (cd $DEST && find . -type f -print0 | xargs -0 md5sum >/dev/null)" \
    "$BIN -w $WD init $SMALL --disc-size $DISC_SIZE >/dev/null && $BIN -w $WD monitor --no-progress >/dev/null"
record_pairs "first staging, $FILES files of $FILE_SIZE B" "$RUN/small.pairs" \
    "cp -a + sync + md5sum" time "<=2" "$rss_first"
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
# Here each run's copy is deleted, not set aside: a few large files free
# their inodes at no cost, while keeping every run's 2 GiB would make each
# next run pay to evict the last ones from the page cache first.
pairs "$RUN/big.pairs" "$PAIRS" "rm -rf $WD && sync" \
    "md5sum $BIG/*" \
    "$BIN -w $WD init $BIG --disc-size $DISC_SIZE >/dev/null && $BIN -w $WD monitor --no-progress >/dev/null"
set_aside "$WD"
sync
"$BIN" -w "$WD" init "$BIG" --disc-size "$DISC_SIZE" >/dev/null
rss=$(peak_rss /dev/null "$BIN" -w "$WD" monitor --no-progress)
record_pairs "first staging, $((big_bytes >> 20)) MiB in $BIG_FILE_MB MiB files" "$RUN/big.pairs" \
    "md5sum" rate ">=1" "$rss" "$big_bytes"

print_table

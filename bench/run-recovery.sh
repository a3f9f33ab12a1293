#!/usr/bin/env bash
# Benchmarks of images and recovery against the plain tools doing the same
# work, each pair in the same hyperfine run on the same data:
#   1. dbackup-mkiso (build, then read back and check every MD5) vs
#      xorriso -as mkisofs -r -J -iso-level 3 followed by md5sum of the
#      same files (the same work with the plain tools);
#   2. dbackup-verify of the image vs md5sum over the same files;
#   3. dbackup-restore of the whole image vs bsdtar -xf + md5sum -c MD5SUMS;
#   4. dbackup-find and dbackup-lost on a 1,000,000-row manifest over 300
#      discs vs the sqlite3 query a user would type by hand.
# Run by hand: bench/run-recovery.sh (BIG_MB=200 ROWS=100000 for a smoke run).
set -euo pipefail

BIG_MB=${BIG_MB:-2048}
BIG_FILE_MB=${BIG_FILE_MB:-10}
ROWS=${ROWS:-1000000}
DISCS=${DISCS:-300}
RUNS=${RUNS:-5}
BENCH_DIR=${BENCH_DIR:-/tmp/dbackup-bench-recovery}
KEEP=${KEEP:-0}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
say() { printf '\n== %s\n' "$*"; }
for tool in hyperfine python3 xorriso bsdtar sqlite3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 2; }
done

say "Building (release)"
(cd "$REPO" && CARGO_TARGET_DIR=$TARGET cargo build --release --quiet)
B=$TARGET/release

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
RUN=$BENCH_DIR
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$BENCH_DIR"; }
trap cleanup EXIT

median() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["median"])' "$1" "$2"
}
RESULTS=$RUN/results.tsv
: > "$RESULTS"
# record NAME DBACKUP_S REFERENCE_S KIND GOAL: KIND "time" compares
# times (ratio = ours/reference, lower is better), "rate" compares
# throughputs on the same bytes (ratio = reference/ours, higher is better).
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; }

say "Generating ${BIG_MB} MiB in ${BIG_FILE_MB} MiB files and one staged disc"
mkdir -p "$RUN/src"
python3 - "$RUN/src" "$BIG_MB" "$BIG_FILE_MB" <<'PY'
import os, sys
root, total, each = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
block = os.urandom(1 << 20)
for i in range((total + each - 1) // each):
    with open(os.path.join(root, "v%04d.bin" % i), "wb") as f:
        for j in range(each):
            f.write(bytes([i & 255, j & 255]) + block[2:])
PY
"$B/dbackup-stage" -w "$RUN/work" init "$RUN/src" --disc-size bd25 >/dev/null
"$B/dbackup-stage" -w "$RUN/work" --no-progress monitor >/dev/null
"$B/dbackup-stage" -w "$RUN/work" close --no-iso >/dev/null
STAGED=$RUN/work/staging/disc-0001
ISO=$RUN/work/isos/disc-1.iso

say "1. Building an image: dbackup-mkiso (build, read back, verify) vs xorriso + md5sum"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RUN/mkiso.json" \
    "$B/dbackup-mkiso -w $RUN/work --disc 1 --keep-staged --no-progress" \
    "sh -c 'xorriso -as mkisofs -quiet -r -J -iso-level 3 -o $RUN/x.iso $STAGED && cd $STAGED && find files -type f -exec md5sum {} + > /dev/null'"
record "image build and read-back" "$(median "$RUN/mkiso.json" 0)" "$(median "$RUN/mkiso.json" 1)" rate ">= 0.9"

say "2. Verifying the image: dbackup-verify vs md5sum of the same files"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RUN/verify.json" \
    "$B/dbackup-verify --no-progress -d $ISO" \
    "sh -c 'cd $STAGED && md5sum -c --quiet MD5SUMS 2>/dev/null || find files -type f -exec md5sum {} + > /dev/null'"
record "verify an image" "$(median "$RUN/verify.json" 0)" "$(median "$RUN/verify.json" 1)" rate ">= 0.9"

if [ -x "$B/dbackup-restore" ]; then
    say "3. Restoring the image: dbackup-restore vs bsdtar -xf + md5sum -c"
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RUN/restore.json" \
        --prepare "rm -rf $RUN/r1 $RUN/r2" \
        "$B/dbackup-restore --no-progress -q -d $ISO --to $RUN/r1" \
        "sh -c 'mkdir -p $RUN/r2 && bsdtar -xf $ISO -C $RUN/r2 && cd $RUN/r2 && md5sum -c --quiet MD5SUMS'"
    record "restore an image" "$(median "$RUN/restore.json" 0)" "$(median "$RUN/restore.json" 1)" time "<= 1.5"
fi

say "4. A manifest of $ROWS rows over $DISCS discs: find and lost"
python3 "$REPO/bench/gen-manifest.py" "$RUN/big" "$ROWS" "$DISCS" >/dev/null
NAME=$(sqlite3 "$RUN/big/manifest.db" "SELECT filename FROM files WHERE id=$((ROWS / 2 + 1))")
NAME=${NAME##*/}
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RUN/find.json" -i \
    "$B/dbackup-find -d $RUN/big $NAME" \
    "sqlite3 file:$RUN/big/manifest.db?immutable=1 \"SELECT id, disc_id, md5 FROM files WHERE filename LIKE '%$NAME%' AND copied=1\""
record "find one name in $ROWS rows" "$(median "$RUN/find.json" 0)" "$(median "$RUN/find.json" 1)" time "< 1 s"
mkdir -p "$RUN/empty"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RUN/lost.json" -i \
    "$B/dbackup-lost --manifest $RUN/big/manifest.db --origin $RUN/empty $((DISCS / 2)) --json" \
    "sqlite3 file:$RUN/big/manifest.db?immutable=1 \"SELECT count(*), sum(size) FROM files WHERE disc_id=$((DISCS / 2)) AND copied=1\""
record "lost-disc report, $ROWS rows" "$(median "$RUN/lost.json" 0)" "$(median "$RUN/lost.json" 1)" time "seconds"
for cmd in "dbackup-find -d $RUN/big $NAME" "dbackup-lost --manifest $RUN/big/manifest.db --origin $RUN/empty $((DISCS / 2)) --json"; do
    /usr/bin/time -f "%M" -o "$RUN/mem" $B/$cmd >/dev/null 2>&1 || true
    echo "peak RSS of ${cmd%% *}: $(( $(tail -1 "$RUN/mem") / 1024 )) MiB"
done

say "Results ($(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d))"
python3 - "$RESULTS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("%-34s %10s %10s %8s  %s" % ("measurement", "dbackup", "reference", "ratio", "goal"))
for name, ours, ref, kind, goal in rows:
    ours, ref = float(ours), float(ref)
    if kind == "rate":
        ratio, note = ref / ours, "throughput vs reference"
    else:
        ratio, note = ours / ref, "time vs reference"
    print("%-34s %9.3fs %9.3fs %8.2f  %s (%s)" % (name, ours, ref, ratio, goal, note))
PY

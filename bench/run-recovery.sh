#!/usr/bin/env bash
# Benchmarks of images and recovery against the plain tools doing the same
# work, as interleaved pairs on the same data (see `pairs` in common.sh):
#   1. dbackup-mkiso (build, then read back and check every MD5) vs
#      xorriso -as mkisofs -r -J -iso-level 3 followed by md5sum of the
#      same files (the same work with the plain tools);
#   2. dbackup-verify of the image vs md5sum over the same files, and
#      again recording the check with a time limit (files in batches);
#   3. dbackup-restore of the whole image vs bsdtar -xf + md5sum -c MD5SUMS.
# Peak memory of each dbackup command from one more run under
# /usr/bin/time -v. Run by hand: bench/run-recovery.sh (BENCH_QUICK=1, or
# BIG_MB=200, for a smoke run).
#
# Environment: BIG_MB=2048 (MiB staged on one disc), BIG_FILE_MB=10,
# PAIRS=5, BENCH_DIR=target/bench, KEEP=1 (keep the data), CARGO_TARGET_DIR.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $BENCH_QUICK == 1 ]]; then
    BIG_MB=${BIG_MB:-100}
    PAIRS=${PAIRS:-3}
fi
BIG_MB=${BIG_MB:-2048}
BIG_FILE_MB=${BIG_FILE_MB:-10}
PAIRS=${PAIRS:-5}

need_tools python3 awk xorriso bsdtar md5sum
build_release
make_run_dir recovery

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
bytes=$(du -sb "$RUN/src" | cut -f1)

say "1. Building an image: dbackup-mkiso (build, read back, verify) vs xorriso + md5sum"
check_idle
pairs "$RUN/mkiso.pairs" "$PAIRS" "" \
    "xorriso -as mkisofs -quiet -r -J -iso-level 3 -o $RUN/x.iso $STAGED && cd $STAGED && find files -type f -exec md5sum {} + > /dev/null" \
    "$B/dbackup-mkiso -w $RUN/work --disc 1 --keep-staged --no-progress"
rss=$(peak_rss "$RUN/mkiso.out" "$B/dbackup-mkiso" -w "$RUN/work" --disc 1 --keep-staged --no-progress)
record_pairs "image build and read-back, $((bytes >> 20)) MiB" "$RUN/mkiso.pairs" \
    "xorriso + md5sum" rate ">=0.9" "$rss" "$bytes"
rm -f "$RUN/x.iso"

say "2. Verifying the image: dbackup-verify vs md5sum of the same files"
check_idle
pairs "$RUN/verify.pairs" "$PAIRS" "" \
    "cd $STAGED && md5sum -c --quiet MD5SUMS 2>/dev/null || find files -type f -exec md5sum {} + > /dev/null" \
    "$B/dbackup-verify --no-progress -d $ISO"
rss=$(peak_rss "$RUN/verify.out" "$B/dbackup-verify" --no-progress -d "$ISO")
record_pairs "verify an image, $((bytes >> 20)) MiB" "$RUN/verify.pairs" \
    "md5sum" rate ">=0.9" "$rss" "$bytes"

say "2b. A recorded, time-limited check (--record, --time-limit, in batches) vs md5sum"
check_idle
pairs "$RUN/verify-record.pairs" "$PAIRS" "" \
    "cd $STAGED && md5sum -c --quiet MD5SUMS 2>/dev/null || find files -type f -exec md5sum {} + > /dev/null" \
    "$B/dbackup-verify --no-progress -d $ISO --record $RUN/work --time-limit 1d"
rss=$(peak_rss "$RUN/verify-record.out" "$B/dbackup-verify" --no-progress -d "$ISO" --record "$RUN/work" --time-limit 1d)
record_pairs "recorded time-limited verify, $((bytes >> 20)) MiB" "$RUN/verify-record.pairs" \
    "md5sum" rate ">=0.9" "$rss" "$bytes"

say "3. Restoring the image: dbackup-restore vs bsdtar -xf + md5sum -c"
check_idle
pairs "$RUN/restore.pairs" "$PAIRS" "rm -rf $RUN/r1 $RUN/r2" \
    "mkdir -p $RUN/r2 && bsdtar -xf $ISO -C $RUN/r2 && cd $RUN/r2 && md5sum -c --quiet MD5SUMS" \
    "$B/dbackup-restore --no-progress -q -d $ISO --to $RUN/r1"
rm -rf "$RUN/r1" "$RUN/r2"
rss=$(peak_rss "$RUN/restore.out" "$B/dbackup-restore" --no-progress -q -d "$ISO" --to "$RUN/r1")
record_pairs "restore a whole image, $((bytes >> 20)) MiB" "$RUN/restore.pairs" \
    "bsdtar -xf + md5sum -c" time "<=1.5" "$rss"

print_table

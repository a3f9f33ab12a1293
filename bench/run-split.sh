#!/usr/bin/env bash
# Benchmarks of a file larger than a disc against the plain tools doing the
# same work, as interleaved pairs on the same data (see `pairs` in
# common.sh):
#   1. staging one SPLIT_MB file onto SPLIT_DISC_MB discs with dbackup-stage
#      (monitor, then close: every part copied while hashed, each disc's
#      image built and read back as it fills) vs md5sum of the file plus
#      xorriso -as mkisofs of the same bytes;
#   2. restoring it from its images with dbackup-restore (parts put
#      together, each part's and the whole MD5 checked) vs bsdtar -xf of the
#      images, cat of the parts and md5sum of the result.
# Peak memory of each dbackup command from one more run under
# /usr/bin/time -v. Run by hand: bench/run-split.sh (BENCH_QUICK=1 for a
# smoke run).
#
# Environment: SPLIT_MB=6144, SPLIT_DISC_MB=2048, PAIRS=5 (after one not
# counted), BENCH_DIR=target/bench, KEEP=1 (keep the data), CARGO_TARGET_DIR.
# Disk: about 4.5 times SPLIT_MB (source, images, two restores).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $BENCH_QUICK == 1 ]]; then
    SPLIT_MB=${SPLIT_MB:-300}
    SPLIT_DISC_MB=${SPLIT_DISC_MB:-64}
    PAIRS=${PAIRS:-2}
fi
SPLIT_MB=${SPLIT_MB:-6144}
SPLIT_DISC_MB=${SPLIT_DISC_MB:-2048}
PAIRS=${PAIRS:-5}

need_tools python3 awk xorriso bsdtar md5sum
build_release
make_run_dir split

say "Generating one ${SPLIT_MB} MiB file"
mkdir -p "$RUN/src"
python3 - "$RUN/src/video.mp4" "$SPLIT_MB" <<'PY'
import os, sys
path, total = sys.argv[1], int(sys.argv[2])
block = os.urandom(1 << 20)
with open(path, "wb") as f:
    for j in range(total):
        f.write(j.to_bytes(4, "little") + block[4:])
PY
bytes=$(stat -c %s "$RUN/src/video.mp4")
disc=$((SPLIT_DISC_MB << 20))
stage="$B/dbackup-stage -w $RUN/work --no-progress"

say "1. Staging it onto ${SPLIT_DISC_MB} MiB discs: dbackup-stage vs md5sum + xorriso"
check_idle
pairs "$RUN/stage.pairs" "$PAIRS" "rm -rf $RUN/work $RUN/x.iso && $stage init $RUN/src --disc-size $disc >/dev/null" \
    "md5sum $RUN/src/video.mp4 >/dev/null && xorriso -as mkisofs -quiet -r -J -iso-level 3 -o $RUN/x.iso $RUN/src" \
    "$stage monitor >/dev/null && $stage close >/dev/null"
rm -f "$RUN/x.iso"
rm -rf "$RUN/work"
$stage init "$RUN/src" --disc-size "$disc" >/dev/null
rss=$(peak_rss "$RUN/stage.out" sh -c "$stage monitor && $stage close")
parts=$(ls "$RUN/work/isos" | grep -c '^disc-.*\.iso$')
record_pairs "stage a ${SPLIT_MB} MiB file in ${parts} parts on ${SPLIT_DISC_MB} MiB discs" \
    "$RUN/stage.pairs" "md5sum + xorriso" rate ">=0.9" "$rss" "$bytes"

say "2. Restoring it from its ${parts} images: dbackup-restore vs bsdtar -xf + cat + md5sum"
isos=$(ls "$RUN"/work/isos/disc-*.iso | sort -V | tr '\n' ' ')
discs=$(for i in $isos; do printf -- '-d %s ' "$i"; done)
# The reference: every image extracted, the parts put together in order,
# the result hashed.
cat >"$RUN/ref-restore.sh" <<REF
set -e
mkdir -p $RUN/r2
for i in $isos; do bsdtar -xf \$i -C $RUN/r2 files; done
find $RUN/r2/files -type f -name '*.*' | awk -F. '{ print \$NF, \$0 }' | sort -n | cut -d' ' -f2- | xargs cat > $RUN/r2/video.mp4
md5sum $RUN/r2/video.mp4 >/dev/null
REF
check_idle
pairs "$RUN/restore.pairs" "$PAIRS" "rm -rf $RUN/r1 $RUN/r2" \
    "sh $RUN/ref-restore.sh" \
    "$B/dbackup-restore --no-progress -q $discs --to $RUN/r1"
rm -rf "$RUN/r1" "$RUN/r2"
# shellcheck disable=SC2086
rss=$(peak_rss "$RUN/restore.out" "$B/dbackup-restore" --no-progress -q $discs --to "$RUN/r1")
cmp "$RUN/r1/video.mp4" "$RUN/src/video.mp4"
record_pairs "restore a ${SPLIT_MB} MiB file from ${parts} discs" \
    "$RUN/restore.pairs" "bsdtar -xf + cat + md5sum" time "<=1.5" "$rss"

print_table

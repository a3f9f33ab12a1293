#!/usr/bin/env bash
# Benchmarks of parity discs against the stock par2 (par2cmdline) doing the
# same work, as interleaved pairs on the same data (see `pairs` in
# common.sh):
#   1. building the parity disc of a 4+1 group of four PARITY_DISC_MB data
#      images: dbackup-mkiso (par2 create over the images, then the parity
#      image written, read back and recorded) vs par2 create alone with the
#      arguments dbackup gives it (-s B -c 8 -f0 -n 1 -u, B the largest
#      image over 8 rounded up to a sector) on the same four images; then
#      against par2 create -m16 as dbackup runs it, for a note of what
#      dbackup's own work costs;
#   2. rebuilding a lost data disc from the three survivors and the parity
#      disc: par2 repair in a folder of survivors (what a stranger does) vs
#      dbackup-lost N --rebuild, when this build has it (otherwise only
#      par2 repair is timed, alone, and a note says so).
# Peak memory of each command, par2's too, from one more run under
# /usr/bin/time -v (a dbackup command's includes the par2 it runs). Run by
# hand: bench/run-parity.sh (BENCH_QUICK=1 for a smoke run).
#
# Environment: PARITY_DISC_MB=250 (the data on each of the 4 discs),
# PAIRS=5 (after one not counted), BENCH_DIR=target/bench, KEEP=1 (keep the
# data), CARGO_TARGET_DIR. Disk: about 15 times PARITY_DISC_MB (sources, images,
# the parity data of both sides, the survivors' .par2 files, rebuilt discs).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $BENCH_QUICK == 1 ]]; then
    PARITY_DISC_MB=${PARITY_DISC_MB:-5}
    PAIRS=${PAIRS:-2}
fi
PARITY_DISC_MB=${PARITY_DISC_MB:-250}
PAIRS=${PAIRS:-5}

need_tools python3 awk par2 bsdtar sqlite3 cmp
build_release
make_run_dir parity

say "Generating four ${PARITY_DISC_MB} MiB files, one a disc, and their images"
mkdir -p "$RUN/src"
python3 - "$RUN/src" "$PARITY_DISC_MB" <<'PY'
import os, sys
root, each = sys.argv[1], int(sys.argv[2])
block = os.urandom(1 << 20)
for i in range(4):
    with open(os.path.join(root, "disc%d.bin" % (i + 1)), "wb") as f:
        for j in range(each):
            f.write(bytes([i & 255]) + j.to_bytes(4, "little") + block[5:])
PY
bytes=$(du -sb "$RUN/src" | cut -f1)
# Room for one file a disc, not two.
disc=$((PARITY_DISC_MB * 3 * 524288 + 1048576))
T=$RUN/template
stage="$B/dbackup-stage -w $T --no-progress -q"
$stage init "$RUN/src" --disc-size "$disc" --parity 4+1 >/dev/null
$stage monitor --no-iso >/dev/null
$stage close --no-iso >/dev/null
# The data images alone: without par2 on PATH, mkiso builds and verifies
# them, and the full group's parity waits (mkiso says so and exits 2).
mkdir -p "$RUN/no-par2"
PATH=$RUN/no-par2 "$B/dbackup-mkiso" -w "$T" --no-progress -q >/dev/null 2>"$RUN/images.err" || true
for n in 1 2 3 4; do
    [[ -f $T/isos/disc-$n.iso ]] || { echo "error: no image of disc $n:" >&2; cat "$RUN/images.err" >&2; exit 2; }
done
[[ ! -e $T/isos/parity-1-1.iso ]] || { echo "error: parity was built without par2" >&2; exit 2; }
[[ $(sqlite3 "$T/manifest.db" "SELECT state FROM parity_groups WHERE id=1") == full ]] ||
    { echo "error: group 1 is not waiting for its parity" >&2; exit 2; }
images=$(du -cb "$T"/isos/disc-*.iso | tail -1 | cut -f1)

# A workdir to build parity in: the template's images hard-linked (only
# read), its catalogue copied (written).
fresh_workdir() {
    echo "rm -rf $1 && mkdir $1 && cp -al $T/. $1/ && rm -f $1/manifest.db && cp $T/manifest.db $1/"
}
W=$RUN/work
# The reference's folder: the same images under the names dbackup gives
# them in its work folder.
R=$RUN/ref
mkdir -p "$R"
for n in 1 2 3 4; do ln "$T/isos/disc-$n.iso" "$R/disc-$n.iso"; done
# dbackup's layout (src/parity/mod.rs): blocks of the largest ISO size / 8,
# rounded up to a 2048-byte sector; 8 recovery blocks a parity disc.
largest=$(stat -c %s "$T"/isos/disc-*.iso | sort -n | tail -1)
block=$(( ((largest + 7) / 8 + 2047) / 2048 * 2048 ))
par2_create="par2 create -q -q -s$block -c8 -f0 -n1 -u -- parity-1.par2 disc-1.iso disc-2.iso disc-3.iso disc-4.iso"
# dbackup gives par2 create a small working set (-m16, src/parity/par2.rs),
# which is faster than par2's default here: timed too, for the overhead of
# dbackup's own work (the parity image written, flushed and read back).
par2_create_m16="par2 create -q -q -m16 -s$block -c8 -f0 -n1 -u -- parity-1.par2 disc-1.iso disc-2.iso disc-3.iso disc-4.iso"

say "1. Building the parity disc of a 4+1 group of $((images >> 20)) MiB: dbackup-mkiso vs par2 create"
check_idle
# Before each run of either side: a fresh workdir, no .par2 files.
pairs "$RUN/build.pairs" "$PAIRS" "$(fresh_workdir "$W") && rm -f $R/*.par2" \
    "cd $R && $par2_create" \
    "$B/dbackup-mkiso -w $W --no-progress -q"

# own_work LABEL WHAT PAIRS: notes the median of PAIRS' differences
# (dbackup minus the par2 command LABEL, run as dbackup runs it), and their
# spread: what dbackup's own work (WHAT) costs.
own_work() {
    python3 - "$@" >>"$BENCH_RESULTS.notes" <<'PY'
import statistics, sys
label, what, path = sys.argv[1:4]
pairs = [tuple(map(float, l.split())) for l in open(path) if l.strip()]
d = [o - r for r, o in pairs]
print("%s alone (as dbackup runs it) %.2f s, so dbackup's own work (%s) takes %.2f s (pairs %.2f-%.2f, %d pairs)"
      % (label, statistics.median(r for r, _ in pairs), what, statistics.median(d), min(d), max(d), len(d)))
PY
}

say "1b. The same against par2 create -m16, as dbackup runs it: what dbackup's own work costs"
check_idle
pairs "$RUN/build-m16.pairs" "$PAIRS" "$(fresh_workdir "$W") && rm -f $R/*.par2" \
    "cd $R && $par2_create_m16" \
    "$B/dbackup-mkiso -w $W --no-progress -q"
own_work "parity build: par2 create -m16" "image written, flushed, read back" "$RUN/build-m16.pairs"

# The last run of the pairs may have been the reference's, after a fresh
# workdir: the run under /usr/bin/time -v, in a fresh one, is the one
# checked, and its parity disc is the one the rebuild reads.
sh -c "$(fresh_workdir "$W")"
rss=$(peak_rss "$RUN/build.out" "$B/dbackup-mkiso" -w "$W" --no-progress -q)
[[ -f $W/isos/parity-1-1.iso ]] || { echo "error: no parity image:" >&2; cat "$RUN/build.out.err" >&2; exit 2; }
recorded=$(sqlite3 "$W/manifest.db" "SELECT block_size FROM parity_groups WHERE id=1")
if [[ $recorded != "$block" ]]; then
    echo "WARNING: dbackup used blocks of $recorded bytes, the reference $block" >&2
    printf 'parity build: dbackup used blocks of %s bytes, the reference %s: not the same work\n' \
        "$recorded" "$block" >>"$BENCH_RESULTS.notes"
fi
rm -f "$R"/*.par2
ref_rss=$(cd "$R" && peak_rss "$RUN/ref-build.out" sh -c "$par2_create")
record_pairs "build the parity disc of a 4+1 group of 4 x $((largest >> 20)) MiB images" \
    "$RUN/build.pairs" "par2 create -s$block -c8 -n1" time "<=1.1" "$rss" "$images"
printf 'parity build: peak RSS of par2 create alone %s MiB\n' "$((ref_rss >> 20))" >>"$BENCH_RESULTS.notes"

say "2. Rebuilding lost disc 3 from discs 1, 2, 4 and the parity disc"
S=$RUN/survivors
mkdir -p "$S" "$RUN/parity-disc"
for n in 1 2 4; do ln "$T/isos/disc-$n.iso" "$S/disc-$n.iso"; done
bsdtar -xf "$W/isos/parity-1-1.iso" -C "$RUN/parity-disc"
cp "$RUN"/parity-disc/*.par2 "$S/"
repair="cd $S && par2 repair -q -q parity-1.par2"
rebuilt=$RUN/rebuilt-3.iso
# It reads only the discs given (no workdir).
lost_cmd="$B/dbackup-lost --no-progress -q 3 --rebuild --disc $S/disc-1.iso --disc $S/disc-2.iso --disc $S/disc-4.iso --disc $W/isos/parity-1-1.iso --to $rebuilt"
have_rebuild=0
why_not='dbackup-lost has no --rebuild in this build'
if "$B/dbackup-lost" --help 2>/dev/null | grep -q -- '--rebuild'; then
    have_rebuild=1
    # Once untimed: it must work, and give the lost image's bytes.
    rm -f "$rebuilt"
    if ! $lost_cmd >"$RUN/lost.out" 2>&1 || ! cmp -s "$rebuilt" "$T/isos/disc-3.iso"; then
        echo "WARNING: dbackup-lost --rebuild did not rebuild disc 3:" >&2
        cat "$RUN/lost.out" >&2
        why_not='dbackup-lost 3 --rebuild failed or gave other bytes'
        have_rebuild=0
    fi
fi
check_idle
if [[ $have_rebuild == 1 ]]; then
    pairs "$RUN/rebuild.pairs" "$PAIRS" "rm -f $rebuilt $S/disc-3.iso" \
        "$repair" \
        "$lost_cmd"
    rm -f "$rebuilt"
    # shellcheck disable=SC2086
    rss=$(peak_rss "$RUN/lost.out" $lost_cmd)
    cmp "$rebuilt" "$T/isos/disc-3.iso"
    record_pairs "rebuild a lost $((largest >> 20)) MiB disc from 3 survivors and the parity disc" \
        "$RUN/rebuild.pairs" "par2 repair" time "<=1.1" "$rss" "$largest"
    repair_s=$(pair_stats "$RUN/rebuild.pairs" time | cut -f2)

    say "2b. The same against par2 repair -T1 -m16, as dbackup runs it: what dbackup's own work costs"
    check_idle
    pairs "$RUN/rebuild-t1.pairs" "$PAIRS" "rm -f $rebuilt $S/disc-3.iso" \
        "cd $S && par2 repair -q -q -T1 -m16 parity-1.par2" \
        "$lost_cmd"
    rm -f "$rebuilt"
    own_work "rebuild: par2 repair -T1 -m16" "parity packets checked, image flushed, read back and checked" \
        "$RUN/rebuild-t1.pairs"
else
    solo "$RUN/rebuild.times" "$PAIRS" "rm -f $S/disc-3.iso" "$repair"
    repair_s=$(median_of "$RUN/rebuild.times")
    printf 'rebuild: %s; only par2 repair measured\n' "$why_not" >>"$BENCH_RESULTS.notes"
fi
rm -f "$S/disc-3.iso"
ref_rss=$(peak_rss "$RUN/repair.out" sh -c "$repair")
cmp "$S/disc-3.iso" "$T/isos/disc-3.iso"
printf 'rebuild: par2 repair of a %s MiB disc: %s s (median), peak RSS %s MiB\n' \
    "$((largest >> 20))" "$(printf '%.2f' "$repair_s")" "$((ref_rss >> 20))" >>"$BENCH_RESULTS.notes"

print_table

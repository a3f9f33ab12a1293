#!/usr/bin/env bash
# Load and scale: catalogues of a million rows and more over 300 discs, at
# each size of SCALE_ROWS (1,000,000 and 5,000,000 files and rows):
#   1. dbackup-stage monitor on an unchanged tree of ROWS small files
#      whose every file is already backed up (a workdir made by init, then
#      filled by gen-workdir.py: 299 closed discs with verified images, one
#      open; every folder recorded), vs find -printf over the same tree;
#      every run of it must print nothing and record nothing;
#   2. dbackup-find of one name in a manifest of ROWS rows (gen-manifest.py:
#      versions and deletions over 300 discs) vs the sqlite3 query a user
#      would type by hand;
#   3. dbackup-lost's report on one disc of that manifest;
#   4. dbackup-restore --dry-run (the plan of restoring every file) given
#      the folder holding that manifest as the newest disc: the other 299
#      are reported missing;
#   5. dbackup-stage report --html of the workdir of step 1 (its page size,
#      and its search timed in headless Chromium when installed).
# Each as interleaved pairs with its reference (see `pairs` in common.sh):
# the rescan's goal is a ratio; the others' are on dbackup's time alone,
# their references shown for scale. Peak memory of each dbackup command from
# one more run under /usr/bin/time -v. Run by hand: bench/run-scale.sh
# (BENCH_QUICK=1 for a smoke run).
#
# Environment: SCALE_ROWS="1000000 5000000" (the sizes, in turn; ROWS=N for
# one), DISCS=300, FILES_PER_DIR=100, PAIRS=5 (after one not counted),
# WARMUP=2 (pairs not counted before the rescan's), SCALE_TREE=1 (0: the
# manifest's steps 2-4 alone, without the workdir and tree of steps 1 and
# 5, which take most of the time to make), BENCH_DIR=target/bench,
# KEEP=1 (keep the data of every size; otherwise each size's is removed
# before the next is made), CARGO_TARGET_DIR. Disk: about 4.3 GB and
# 1,020,000 inodes a million files (5,000,000: about 21 GB, and ten minutes
# to generate); checked up front.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $BENCH_QUICK == 1 ]]; then
    SCALE_ROWS=${SCALE_ROWS:-${ROWS:-20000 50000}}
    PAIRS=${PAIRS:-3}
    WARMUP=${WARMUP:-1}
fi
SCALE_ROWS=${SCALE_ROWS:-${ROWS:-1000000 5000000}}
DISCS=${DISCS:-300}
FILES_PER_DIR=${FILES_PER_DIR:-100}
PAIRS=${PAIRS:-5}
WARMUP=${WARMUP:-2}
SCALE_TREE=${SCALE_TREE:-1}

for rows in $SCALE_ROWS; do
    if [[ ! $rows =~ ^[1-9][0-9]*$ ]] || ((rows < DISCS)); then
        echo "error: SCALE_ROWS: $rows is not a number of files of at least DISCS ($DISCS)" >&2
        exit 2
    fi
done

# Room for the sizes, up front, before building (`run-scale.sh --check-space`
# does only that: bench/run runs it before its first benchmark). One size
# at a time (each removed before the next is made), or all at once with
# KEEP=1. Per file about 5 KiB (its inode, its share of a folder, its rows
# in the workdir's catalogue and in the manifest) and 1.02 inodes (the
# file, its folder's share, the open disc's staged copies).
need_kb=0 need_inodes=0
for rows in $SCALE_ROWS; do
    kb=$((rows * 5)) inodes=$((rows * 102 / 100 + 1000))
    if [[ $KEEP == 1 ]]; then
        need_kb=$((need_kb + kb)) need_inodes=$((need_inodes + inodes))
    else
        if ((kb > need_kb)); then need_kb=$kb; fi
        if ((inodes > need_inodes)); then need_inodes=$inodes; fi
    fi
done
mkdir -p "$BENCH_DIR"
avail_kb=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
avail_inodes=$(df -Pi "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
# KiB -> "N GiB", or "N MiB" under a GiB.
size_of() { if (($1 >= 1048576)); then echo "$(($1 >> 20)) GiB"; else echo "$(($1 >> 10)) MiB"; fi; }
echo "space: SCALE_ROWS=\"$SCALE_ROWS\"$([[ $KEEP == 1 ]] && echo ' (KEEP=1: all at once)') needs about $(size_of "$need_kb") and $need_inodes inodes; $(size_of "$avail_kb") and $avail_inodes inodes free"
if ((avail_kb < need_kb)); then
    echo "error: not enough free space in $BENCH_DIR for SCALE_ROWS=\"$SCALE_ROWS\": about $(size_of "$need_kb") needed, $(size_of "$avail_kb") free" >&2
    rmdir "$BENCH_DIR" 2>/dev/null || true
    exit 2
fi
# Some filesystems (btrfs) have no fixed number of inodes and report none.
if [[ $avail_inodes =~ ^[0-9]+$ ]] && (($(df -Pi "$BENCH_DIR" | awk 'NR == 2 { print $2 }') > 0)) &&
    ((avail_inodes < need_inodes)); then
    echo "error: not enough free inodes in $BENCH_DIR for SCALE_ROWS=\"$SCALE_ROWS\": about $need_inodes needed, $avail_inodes free" >&2
    rmdir "$BENCH_DIR" 2>/dev/null || true
    exit 2
fi

if [[ ${1:-} == --check-space ]]; then exit 0; fi

need_tools python3 awk sqlite3 find
build_release
make_run_dir scale

# Seconds since $1 (a date +%s.%N), rounded.
since() {
    python3 -c 'import sys; print("%.0f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$(date +%s.%N)"
}

# Every measurement at one size: $1 files in the tree, rows in the manifest.
scale_at() {
    local rows=$1 n
    n=$(commas "$rows")
    local R=$RUN/rows-$rows
    mkdir "$R"

    local rss
    if [[ $SCALE_TREE == 1 ]]; then
        say "Generating a workdir with $n backed-up files over $DISCS discs, and its tree"
        local TREE=$R/tree WD=$R/wd start gen_s
        mkdir "$TREE"
        start=$(date +%s.%N)
        "$B/dbackup-stage" -w "$WD" init "$TREE" --disc-size bd25 >/dev/null
        python3 "$REPO/bench/gen-workdir.py" "$WD" "$rows" "$DISCS" "$FILES_PER_DIR"
        sync
        gen_s=$(since "$start")
        echo "generated in $gen_s s"
        printf 'generating the workdir and tree of %s files: %s s\n' "$n" "$gen_s" >>"$BENCH_RESULTS.notes"

        say "1. Rescan of $n unchanged, backed-up files: dbackup monitor vs find"
        # The generated workdir must leave monitor nothing to do: any output, a
        # failure, or a row recorded means it is not what dbackup-stage makes.
        local monitor="$B/dbackup-stage -w $WD monitor --no-progress" rc=0 rows_before rows_after
        local count="SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM entries), (SELECT count(*) FROM deletions)"
        rows_before=$(sqlite3 "$WD/manifest.db" "$count")
        # shellcheck disable=SC2086
        $monitor >"$R/check.out" 2>"$R/check.err" || rc=$?
        if [[ $rc -ne 0 || -s $R/check.out || -s $R/check.err ]]; then
            echo "error: monitor on the generated workdir exited $rc and printed:" >&2
            head -5 "$R/check.out" "$R/check.err" >&2
            exit 2
        fi
        check_idle
        # Every run of monitor must print nothing (PAIRS_QUIET).
        PAIRS_QUIET=1 PAIRS_WARMUP=$WARMUP pairs "$R/rescan.pairs" "$PAIRS" "" \
            "find $TREE -type f -printf '%s %T@\n'" \
            "$monitor"
        # shellcheck disable=SC2086
        rss=$(peak_rss "$R/rescan.out" $monitor)
        if [[ -s $R/rescan.out || -s $R/rescan.out.err ]]; then
            echo "error: a rescan printed something:" >&2
            head -5 "$R/rescan.out" "$R/rescan.out.err" >&2
            exit 2
        fi
        rows_after=$(sqlite3 "$WD/manifest.db" "$count")
        if [[ $rows_after != "$rows_before" ]]; then
            echo "error: the rescans recorded something (files, entries, deletions: $rows_before before, $rows_after after)" >&2
            exit 2
        fi
        record_pairs "rescan of $n unchanged files, $DISCS discs" "$R/rescan.pairs" \
            "find -printf" time "<=3" "$rss"
    fi

    say "A manifest of $n rows over $DISCS discs"
    local M=$R/manifest DB NAME LOST
    start=$(date +%s.%N)
    python3 "$REPO/bench/gen-manifest.py" "$M" "$rows" "$DISCS"
    printf 'generating the manifest of %s rows: %s s\n' "$n" "$(since "$start")" >>"$BENCH_RESULTS.notes"
    DB=$M/manifest.db
    NAME=$(sqlite3 "$DB" "SELECT filename FROM files WHERE id=$((rows / 2 + 1))")
    NAME=${NAME##*/}
    LOST=$((DISCS / 2))
    mkdir -p "$R/empty"
    local ro="'file:$DB?immutable=1'"

    say "2. Finding one name: dbackup-find (sqlite3 LIKE for scale)"
    check_idle
    pairs "$R/find.pairs" "$PAIRS" "" \
        "sqlite3 $ro \"SELECT id, disc_id, md5 FROM files WHERE filename LIKE '%$NAME%' AND copied=1\"" \
        "$B/dbackup-find --no-progress -d $M $NAME"
    rss=$(peak_rss "$R/find.out" "$B/dbackup-find" --no-progress -d "$M" "$NAME")
    [[ -s $R/find.out ]] || { echo "error: dbackup-find found nothing" >&2; exit 2; }
    record_pairs "find one name in $n rows" "$R/find.pairs" "sqlite3 LIKE" abs "<1" "$rss"

    say "3. Lost-disc report on disc $LOST: dbackup-lost (sqlite3 count of the disc's rows for scale)"
    check_idle
    # It finds data unrecoverable (exit 1): no other copy of the disc.
    PAIRS_STATUS="0 1" pairs "$R/lost.pairs" "$PAIRS" "" \
        "sqlite3 $ro \"SELECT count(*), sum(size) FROM files WHERE disc_id=$LOST AND copied=1\"" \
        "$B/dbackup-lost --no-progress --manifest $DB --origin $R/empty $LOST --json"
    rss=$(peak_rss "$R/lost.out" "$B/dbackup-lost" --no-progress --manifest "$DB" --origin "$R/empty" "$LOST" --json)
    [[ -s $R/lost.out ]] || { echo "error: dbackup-lost printed no report" >&2; exit 2; }
    record_pairs "lost-disc report, $n rows" "$R/lost.pairs" "sqlite3 count, one disc" abs "<10" "$rss"

    say "4. Restore plan of every file: dbackup-restore --dry-run (sqlite3 latest versions per disc for scale)"
    check_idle
    # The other discs are missing (exit 1).
    PAIRS_STATUS="0 1" pairs "$R/plan.pairs" "$PAIRS" "" \
        "sqlite3 $ro \"SELECT disc_id, count(*), sum(size) FROM (SELECT disc_id, size, max(id) FROM files WHERE copied=1 GROUP BY filename) GROUP BY disc_id\"" \
        "$B/dbackup-restore --no-progress --dry-run -d $M --to $R/restored"
    rss=$(peak_rss "$R/plan.out" "$B/dbackup-restore" --no-progress --dry-run -d "$M" --to "$R/restored")
    head -2 "$R/plan.out"
    grep -q '^Restore plan' "$R/plan.out" || { echo "error: dbackup-restore printed no plan" >&2; exit 2; }
    [[ ! -e $R/restored ]] || { echo "error: the dry run wrote to its target" >&2; exit 2; }
    record_pairs "restore plan, every file of $n rows" "$R/plan.pairs" "sqlite3 GROUP BY" abs "<10" "$rss"
    # The plan of a real restore keeps what writing needs; with --drive and
    # stdin not a terminal it is made and told, and nothing is asked for or
    # written (it exits non-zero: the discs were not inserted).
    mkdir -p "$R/drive"
    check_idle
    solo "$R/plan-real.times" "$PAIRS" "" \
        "$B/dbackup-restore --no-progress -d $M --drive $R/drive --to $R/restored </dev/null; [ \$? -ne 101 ]"
    rss=$(peak_rss "$R/plan-real.out" "$B/dbackup-restore" --no-progress -d "$M" --drive "$R/drive" --to "$R/restored" </dev/null)
    grep -q '^Restore plan' "$R/plan-real.out" || { echo "error: dbackup-restore printed no plan" >&2; exit 2; }
    [[ ! -e $R/restored ]] || { echo "error: the run without a terminal wrote to its target" >&2; exit 2; }
    record "restore plan of a real restore, every file of $n rows" "$(median_of "$R/plan-real.times")" - - abs "<10" "$rss"

    if [[ $SCALE_TREE == 1 ]]; then
        say "5. Status page of the workdir of $n files: dbackup-stage report --html (sqlite3 reading every name in order for scale)"
        check_idle
        pairs "$R/page.pairs" "$PAIRS" "" \
            "sqlite3 'file:$WD/manifest.db?immutable=1' \"SELECT filename, disc_id FROM files WHERE copied=1 ORDER BY filename\"" \
            "$B/dbackup-stage -w $WD -q report --html $R/page.html"
        rss=$(peak_rss "$R/page.out" "$B/dbackup-stage" -w "$WD" -q report --html "$R/page.html")
        local page_bytes
        page_bytes=$(stat -c %s "$R/page.html")
        record_pairs "status page of $n files" "$R/page.pairs" "sqlite3 names in order" abs "<10" "$rss"
        printf 'status page of %s files: %s bytes (%s bytes a file)\n' "$n" "$page_bytes" "$((page_bytes / rows))" >>"$BENCH_RESULTS.notes"
        # The page's search, timed by the page itself in headless Chromium (when
        # installed): one rare name, one path, and a name part every file has.
        if command -v chromium >/dev/null; then
            local q ms
            for q in "f$(printf %07d $((rows - 1)))" "b00012/" ".dat"; do
                chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
                    --disable-component-update --disable-sync --no-first-run --user-data-dir="$R/chromium" \
                    --virtual-time-budget=60000 --dump-dom "file://$R/page.html#q=$q" 2>/dev/null >"$R/dom.html" || true
                ms=$(grep -o 'id="summary" data-ms="[0-9]*"' "$R/dom.html" | grep -o '[0-9]*' || echo '?')
                printf 'status page search for %s in %s names (Chromium): %s ms\n' "$q" "$n" "$ms" >>"$BENCH_RESULTS.notes"
            done
        fi
    fi

    if [[ $KEEP != 1 ]]; then
        start=$(date +%s.%N)
        rm -rf "$R"
        echo "removed the data of $n files in $(since "$start") s"
    fi
}

for rows in $SCALE_ROWS; do
    scale_at "$rows"
done

print_table

#!/usr/bin/env bash
# Load and scale: a million catalogue rows over 300 discs.
#   1. dbackup-stage monitor on an unchanged tree of 1,000,000 small files
#      whose every file is already backed up (a workdir made by init, then
#      filled by gen-workdir.py: 299 closed discs with verified images, one
#      open), vs find -printf over the same tree; it must print nothing;
#   2. dbackup-find of one name in a 1,000,000-row manifest (gen-manifest.py:
#      versions and deletions over 300 discs) vs the sqlite3 query a user
#      would type by hand;
#   3. dbackup-lost's report on one disc of that manifest;
#   4. dbackup-restore --dry-run (the plan of restoring every file) given
#      the folder holding that manifest as the newest disc: the other 299
#      are reported missing; then the plan of a real restore, with --drive
#      and stdin not a terminal: every file planned to be read, nothing
#      asked for, nothing restored;
#   5. dbackup-stage report --html of the workdir of step 1 (its page size,
#      and its search timed in headless Chromium when installed).
# Peak memory of each from one more run under /usr/bin/time -v.
# Run by hand: bench/run-scale.sh (BENCH_QUICK=1 for a smoke run).
#
# Environment: ROWS=1000000 (manifest rows, and files in the tree),
# DISCS=300, FILES_PER_DIR=100, RUNS=5, WARMUP=2 (rescan),
# BENCH_DIR=target/bench, KEEP=1 (keep the data), CARGO_TARGET_DIR.
# The tree of a million files takes about 4 GiB (inodes and folders).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $BENCH_QUICK == 1 ]]; then
    ROWS=${ROWS:-20000}
    RUNS=${RUNS:-3}
    WARMUP=${WARMUP:-1}
fi
ROWS=${ROWS:-1000000}
DISCS=${DISCS:-300}
FILES_PER_DIR=${FILES_PER_DIR:-100}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-2}

need_tools hyperfine python3 sqlite3 find
build_release
make_run_dir scale

need_kb=$(( ROWS * 5 ))
avail_kb=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
if (( avail_kb < need_kb )); then
    echo "error: not enough free space in $BENCH_DIR (about $((need_kb >> 20)) GiB needed)" >&2
    exit 2
fi

say "Generating a workdir with $ROWS backed-up files over $DISCS discs, and its tree"
TREE=$RUN/tree
WD=$RUN/wd
mkdir "$TREE"
start=$(date +%s.%N)
"$B/dbackup-stage" -w "$WD" init "$TREE" --disc-size bd25 >/dev/null
python3 "$REPO/bench/gen-workdir.py" "$WD" "$ROWS" "$DISCS" "$FILES_PER_DIR"
sync
gen_s=$(python3 -c 'import sys; print("%.0f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$start" "$(date +%s.%N)")
echo "generated in $gen_s s"
printf 'generating the workdir and tree of %s files: %s s\n' "$ROWS" "$gen_s" >>"$BENCH_RESULTS.notes"

say "1. Rescan of $ROWS unchanged, backed-up files: dbackup monitor vs find"
# The generated workdir must leave monitor nothing to do: any output, or a
# failure, means it does not match what dbackup-stage would have made.
rc=0
"$B/dbackup-stage" -w "$WD" monitor --no-progress >"$RUN/check.out" 2>"$RUN/check.err" || rc=$?
if [[ $rc -ne 0 || -s $RUN/check.out || -s $RUN/check.err ]]; then
    echo "error: monitor on the generated workdir exited $rc and printed:" >&2
    head -5 "$RUN/check.out" "$RUN/check.err" >&2
    exit 2
fi
check_idle
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$RUN/rescan.json" \
    -n "dbackup monitor (rescan)" "$B/dbackup-stage -w $WD monitor --no-progress" \
    -n "find -printf" "find $TREE -type f -printf '%s %T@\n'"
rss=$(peak_rss "$RUN/rescan.out" "$B/dbackup-stage" -w "$WD" monitor --no-progress)
if [[ -s $RUN/rescan.out || -s $RUN/rescan.out.err ]]; then
    echo "error: a rescan printed something" >&2
    exit 2
fi
record "rescan of $ROWS unchanged files, $DISCS discs" "$(median "$RUN/rescan.json" 0)" "$(median "$RUN/rescan.json" 1)" \
    "find -printf" time "<=3" "$rss"

say "A manifest of $ROWS rows over $DISCS discs"
M=$RUN/manifest
python3 "$REPO/bench/gen-manifest.py" "$M" "$ROWS" "$DISCS"
DB=$M/manifest.db
NAME=$(sqlite3 "$DB" "SELECT filename FROM files WHERE id=$((ROWS / 2 + 1))")
NAME=${NAME##*/}
LOST=$((DISCS / 2))
mkdir -p "$RUN/empty"

say "2. Finding one name: dbackup-find vs sqlite3"
check_idle
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RUN/find.json" -i \
    "$B/dbackup-find --no-progress -d $M $NAME" \
    "sqlite3 file:$DB?immutable=1 \"SELECT id, disc_id, md5 FROM files WHERE filename LIKE '%$NAME%' AND copied=1\""
rss=$(peak_rss "$RUN/find.out" "$B/dbackup-find" --no-progress -d "$M" "$NAME")
[[ -s $RUN/find.out ]] || { echo "error: dbackup-find found nothing" >&2; exit 2; }
record "find one name in $ROWS rows" "$(median "$RUN/find.json" 0)" "$(median "$RUN/find.json" 1)" \
    "sqlite3 LIKE" abs "<1" "$rss"

say "3. Lost-disc report on disc $LOST: dbackup-lost (sqlite3 count of the disc's rows for scale)"
check_idle
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RUN/lost.json" -i \
    "$B/dbackup-lost --no-progress --manifest $DB --origin $RUN/empty $LOST --json" \
    "sqlite3 file:$DB?immutable=1 \"SELECT count(*), sum(size) FROM files WHERE disc_id=$LOST AND copied=1\""
rss=$(peak_rss "$RUN/lost.out" "$B/dbackup-lost" --no-progress --manifest "$DB" --origin "$RUN/empty" "$LOST" --json)
[[ -s $RUN/lost.out ]] || { echo "error: dbackup-lost printed no report" >&2; exit 2; }
record "lost-disc report, $ROWS rows" "$(median "$RUN/lost.json" 0)" "$(median "$RUN/lost.json" 1)" \
    "sqlite3 count, one disc" abs "<10" "$rss"

say "4. Restore plan of every file: dbackup-restore --dry-run (sqlite3 latest versions per disc for scale)"
check_idle
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RUN/plan.json" -i \
    "$B/dbackup-restore --no-progress --dry-run -d $M --to $RUN/restored" \
    "sqlite3 file:$DB?immutable=1 \"SELECT disc_id, count(*), sum(size) FROM (SELECT disc_id, size, max(id) FROM files WHERE copied=1 GROUP BY filename) GROUP BY disc_id\""
rss=$(peak_rss "$RUN/plan.out" "$B/dbackup-restore" --no-progress --dry-run -d "$M" --to "$RUN/restored")
head -2 "$RUN/plan.out"
grep -q '^Restore plan' "$RUN/plan.out" || { echo "error: dbackup-restore printed no plan" >&2; exit 2; }
[[ ! -e $RUN/restored ]] || { echo "error: the dry run wrote to its target" >&2; exit 2; }
record "restore plan, every file of $ROWS rows" "$(median "$RUN/plan.json" 0)" "$(median "$RUN/plan.json" 1)" \
    "sqlite3 GROUP BY" abs "<10" "$rss"
# The plan of a real restore keeps what writing needs; with --drive and
# stdin not a terminal (hyperfine gives /dev/null) it is made and told,
# and nothing is asked for or written.
mkdir -p "$RUN/drive"
check_idle
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RUN/plan-real.json" -i \
    "$B/dbackup-restore --no-progress -d $M --drive $RUN/drive --to $RUN/restored"
rss=$(peak_rss "$RUN/plan-real.out" "$B/dbackup-restore" --no-progress -d "$M" --drive "$RUN/drive" --to "$RUN/restored" </dev/null)
grep -q '^Restore plan' "$RUN/plan-real.out" || { echo "error: dbackup-restore printed no plan" >&2; exit 2; }
[[ ! -e $RUN/restored ]] || { echo "error: the run without a terminal wrote to its target" >&2; exit 2; }
record "restore plan of a real restore, every file of $ROWS rows" "$(median "$RUN/plan-real.json" 0)" - - abs "<10" "$rss"

say "5. Status page of the workdir of $ROWS files: dbackup-stage report --html (sqlite3 reading every name in order for scale)"
check_idle
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RUN/page.json" \
    "$B/dbackup-stage -w $WD -q report --html $RUN/page.html" \
    "sqlite3 file:$WD/manifest.db?immutable=1 \"SELECT filename, disc_id FROM files WHERE copied=1 ORDER BY filename\""
rss=$(peak_rss "$RUN/page.out" "$B/dbackup-stage" -w "$WD" -q report --html "$RUN/page.html")
page_bytes=$(stat -c %s "$RUN/page.html")
record "status page of $ROWS files" "$(median "$RUN/page.json" 0)" "$(median "$RUN/page.json" 1)" \
    "sqlite3 names in order" abs "<10" "$rss"
printf 'status page of %s files: %s bytes (%s bytes a file)\n' "$ROWS" "$page_bytes" "$((page_bytes / ROWS))" >>"$BENCH_RESULTS.notes"
# The page's search, timed by the page itself in headless Chromium (when
# installed): one rare name, one path, and a name part every file has.
if command -v chromium >/dev/null; then
    for q in "f$(printf %07d $((ROWS - 1)))" "b00012/" ".dat"; do
        chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
            --disable-component-update --disable-sync --no-first-run --user-data-dir="$RUN/chromium" \
            --virtual-time-budget=60000 --dump-dom "file://$RUN/page.html#q=$q" 2>/dev/null >"$RUN/dom.html" || true
        ms=$(grep -o 'id="summary" data-ms="[0-9]*"' "$RUN/dom.html" | grep -o '[0-9]*' || echo '?')
        printf 'status page search for %s in %s names (Chromium): %s ms\n' "$q" "$ROWS" "$ms" >>"$BENCH_RESULTS.notes"
    done
fi

print_table

# Helpers shared by the benchmark scripts (sourced, not run).
#
# Results go to $BENCH_RESULTS, one tab-separated line per comparison (see
# record below); bench/table.py prints them. When a script runs on its own,
# it prints its own table at the end; under bench/run, bench/run prints one
# table for all.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BENCH_DIR=${BENCH_DIR:-$REPO/target/bench}
KEEP=${KEEP:-0}
# BENCH_QUICK=1: small sizes, to check that the scripts work (numbers mean
# little). Each size can still be set on its own.
BENCH_QUICK=${BENCH_QUICK:-0}

say() { printf '\n== %s\n' "$*"; }

need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 2; }
    done
    [[ -x /usr/bin/time ]] || { echo "error: /usr/bin/time is required (Debian package 'time')" >&2; exit 2; }
}

build_release() {
    say "Building (release)"
    (cd "$REPO" && CARGO_TARGET_DIR=$TARGET cargo build --release --quiet --bins)
    B=$TARGET/release
}

# A fresh run folder under $BENCH_DIR, removed on exit unless KEEP=1.
# Sets RUN. Standalone runs also get RESULTS of their own.
make_run_dir() {
    mkdir -p "$BENCH_DIR"
    BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
    RUN=$(mktemp -d "$BENCH_DIR/$1.XXXXXX")
    trap cleanup_run EXIT
    if [[ -n ${BENCH_RESULTS:-} ]]; then
        STANDALONE=0
    else
        STANDALONE=1
        BENCH_RESULTS=$RUN/results.tsv
        : >"$BENCH_RESULTS"
    fi
}
cleanup_run() {
    if [[ $KEEP == 1 ]]; then
        echo "kept: $RUN"
    else
        echo "removing $RUN"
        rm -rf "$RUN"
        rmdir "$BENCH_DIR" 2>/dev/null || true
    fi
}

# median in seconds of command number $2 in hyperfine's JSON export $1
median() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["median"])' "$1" "$2"
}

# peak RSS in bytes of a command, from /usr/bin/time -v (any exit status);
# its stdout goes to $1, its stderr to $1.err
peak_rss() {
    local out=$1; shift
    local log=$RUN/time.log
    /usr/bin/time -v -o "$log" "$@" >"$out" 2>"$out.err" || true
    awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 * 1024 }' "$log"
}

# record NAME OURS_S REF_S REF_LABEL KIND GOAL RSS_BYTES [BYTES]
#   KIND time: ratio = ours / reference time, GOAL bounds it (e.g. "<=3");
#        rate: ratio = reference / ours time = our throughput over the
#              reference's on the same bytes (e.g. ">=0.9");
#        abs:  GOAL bounds our time in seconds (e.g. "<1"); the reference,
#              if any, is shown for scale, not as a ratio.
#   REF_S and REF_LABEL "-" when there is no reference; RSS_BYTES "-" when
#   not measured; BYTES (optional) the data size, to show throughputs.
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "${8:--}" >>"$BENCH_RESULTS"
}

# Warns when other processes use the CPUs: the comparisons assume an idle machine.
check_idle() {
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    if python3 -c 'import os,sys; sys.exit(0 if float(sys.argv[1]) > 0.5 * os.cpu_count() else 1)' "$load"; then
        echo "WARNING: the machine is busy (load $load on $(nproc) CPUs): results are unreliable" >&2
        printf 'busy\n' >>"$BENCH_RESULTS.busy"
    fi
}

# The machine, one "key: value" a line (for the log and the table).
machine() {
    local dir=$1 fs
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
    echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    fs=$(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$dir" 2>/dev/null | tr -s " " || echo "?")
    echo "bench folder: $dir on $fs"
    local src type
    read -r src type _ <<<"$fs"
    if [[ $type == ext4 && -r /sys/fs/ext4/$(basename "$src")/journal_task ]]; then
        if [[ $(cat "/sys/fs/ext4/$(basename "$src")/journal_task") == "<none>" ]]; then
            echo "ext4 journal: none"
        else
            echo "ext4 journal: yes"
        fi
    fi
    echo "dbackup: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
}

# Prints the table of $BENCH_RESULTS (standalone runs).
print_table() {
    [[ $STANDALONE == 1 ]] || return 0
    say "Results (medians)"
    python3 "$REPO/bench/table.py" "$BENCH_RESULTS"
}

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

# pairs OUT RUNS PREPARE REF OURS: times the reference command REF and
# ours (OURS) as RUNS interleaved pairs, each run after PREPARE (a command
# line, or "" for none), the order alternating (REF first in even pairs,
# OURS first in odd ones) so that a machine whose speed drifts weighs on
# both alike. Writes "REF_SECONDS OURS_SECONDS" a pair a line to OUT.
# Wall time of the whole command, from `date +%s.%N` on each side. One
# pair first is not recorded (warm caches; PAIRS_WARMUP=N for N, 0 for
# none). Either command failing stops the script, but for the exit
# statuses PAIRS_STATUS lists (default "0"; "0 1" where a finding is
# expected). PAIRS_QUIET=1: every run of OURS, warm-up included, must print
# nothing, on stdout or stderr (an unchanged rescan), or the script stops.
pairs() {
    local out=$1 runs=$2 prepare=$3 ref=$4 ours=$5 i which cmd t0 t1 r o rc
    local ok=" ${PAIRS_STATUS:-0} " quiet=${PAIRS_QUIET:-0}
    : >"$out"
    for ((i = -${PAIRS_WARMUP:-1}; i < runs; i++)); do
        r="" o=""
        for which in $( ((i % 2 == 0)) && echo "ref ours" || echo "ours ref"); do
            if [[ -n $prepare ]]; then sh -c "$prepare" >/dev/null 2>&1; fi
            cmd=$ref
            [[ $which == ours ]] && cmd=$ours
            rc=0
            t0=$(date +%s.%N)
            sh -c "$cmd" >"$out.stdout" 2>"$out.err" || rc=$?
            t1=$(date +%s.%N)
            if [[ $ok != *" $rc "* ]]; then
                echo "error: exit status $rc: $cmd" >&2
                head -20 "$out.err" >&2
                return 1
            fi
            if [[ $which == ours && $quiet == 1 && ( -s $out.stdout || -s $out.err ) ]]; then
                echo "error: printed something, where nothing was expected: $cmd" >&2
                head -5 "$out.stdout" "$out.err" >&2
                return 1
            fi
            if [[ $which == ref ]]; then
                r=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
            else
                o=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
            fi
        done
        if ((i < 0)); then continue; fi
        echo "$r $o" >>"$out"
        echo "pair $((i + 1))/$runs: reference $r s, dbackup $o s"
    done
    rm -f "$out.stdout"
}

# solo OUT RUNS PREPARE CMD: times CMD alone RUNS times (after one run not
# counted, PAIRS_WARMUP as in pairs), each after PREPARE; writes its
# seconds a run a line to OUT. For what has nothing to pair with.
solo() {
    local out=$1 runs=$2 prepare=$3 cmd=$4 i t0 t1 s
    : >"$out"
    for ((i = -${PAIRS_WARMUP:-1}; i < runs; i++)); do
        if [[ -n $prepare ]]; then sh -c "$prepare" >/dev/null 2>&1; fi
        t0=$(date +%s.%N)
        if ! sh -c "$cmd" >/dev/null 2>"$out.err"; then
            echo "error: failed: $cmd" >&2
            head -20 "$out.err" >&2
            return 1
        fi
        t1=$(date +%s.%N)
        s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
        if ((i < 0)); then continue; fi
        echo "$s" >>"$out"
        echo "run $((i + 1))/$runs: $s s"
    done
}

# Statistics of the pairs in OUT (see pairs), tab-separated: the median
# time of ours and of the reference, the median of the pair ratios (KIND
# time: ours / reference; rate: reference / ours; abs: ours / reference,
# shown for no goal), the smallest and largest ratio, the number of pairs,
# and the spread of each side's times ("lo-hi" seconds).
pair_stats() {
    python3 - "$1" "$2" <<'PY'
import statistics, sys
pairs = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
ref = [p[0] for p in pairs]
ours = [p[1] for p in pairs]
ratios = [(r / o) if sys.argv[2] == "rate" else (o / r) for r, o in pairs]
print(statistics.median(ours), statistics.median(ref), statistics.median(ratios),
      min(ratios), max(ratios), len(pairs), "%g-%g" % (min(ours), max(ours)),
      "%g-%g" % (min(ref), max(ref)), sep="\t")
PY
}

# record_pairs NAME OUT REF_LABEL KIND GOAL RSS_BYTES [BYTES]: records the
# pairs of OUT (see pairs) as record does, with the median of the pair
# ratios and their spread (KIND time: ours / reference; rate: reference /
# ours): a goal is met only when that median meets it. KIND abs: the goal
# bounds the median of our times; the spreads of both sides' times are
# shown (the reference does other work: for scale only).
record_pairs() {
    local ours ref ratio lo hi n ours_spread ref_spread
    IFS=$'\t' read -r ours ref ratio lo hi n ours_spread ref_spread <<<"$(pair_stats "$2" "$4")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$ours" "$ref" "$3" "$4" "$5" "$6" "${7:--}" \
        "$ratio" "$lo-$hi over $n pairs" "$ours_spread" "$ref_spread" >>"$BENCH_RESULTS"
}

# The median of the numbers in file $1, one a line (see solo).
median_of() {
    python3 -c 'import statistics,sys; print(statistics.median(float(l) for l in open(sys.argv[1]) if l.strip()))' "$1"
}

# 1234567 -> 1,234,567 (names of measurements).
commas() {
    local n=$1 out=""
    while ((${#n} > 3)); do
        out=,${n: -3}$out
        n=${n:0:${#n}-3}
    done
    echo "$n$out"
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

#!/usr/bin/env bash
# Builds dbackup and runs its main job on the bundled sample folder: create a
# workdir, stage the folder, change a file, stage again, close the disc, and
# show the status. The workdir goes to a fresh temp folder (or $1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cargo build --release --quiet --manifest-path "$here/../Cargo.toml"
bin="$here/../target/release"
work=${1:-$(mktemp -d /tmp/dbackup-demo.XXXXXX)}
watched=$(mktemp -d /tmp/dbackup-demo-folder.XXXXXX)
cp -a "$here/folder/." "$watched/"
[ "$work" = "${1:-}" ] || rmdir "$work"

run() { echo "\$ $*"; "$@"; echo; }
run "$bin/dbackup-stage" -w "$work" init "$watched" --disc-size cd --name "Sample photos"
run "$bin/dbackup-stage" -w "$work" monitor
echo "(a second run finds nothing to do and prints nothing)"
run "$bin/dbackup-stage" -w "$work" monitor
echo "Day 3: packed up." >> "$watched/2012/holiday/diary.txt"
run "$bin/dbackup-stage" -w "$work" monitor
run "$bin/dbackup-stage" -w "$work" close
run "$bin/dbackup-stage" -w "$work" status
echo "Workdir: $work   (watched copy of the sample: $watched)"

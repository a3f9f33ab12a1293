
use builtin;
use str;

set edit:completion:arg-completer[dbackup-verify] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'dbackup-verify'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'dbackup-verify'= {
            cand -d 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc''s manifest gives the history'
            cand --disc 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc''s manifest gives the history'
            cand --record 'Record each disc''s result (date, copy, files ok, damaged, unreadable, missing, and the names) in the catalogue of WORKDIR, the set''s workdir, as each disc is done: `dbackup-stage copies` and `--due` read them'
            cand --copy 'With --record: the copy that was read (see `dbackup-stage copies`). Default: a disc''s only copy, when it has one'
            cand --time-limit 'With --record: stop cleanly once DURATION has passed (90s, 45m for minutes, 5h, 1d), at the next batch of files; the next run goes on where this one stopped, and checks the discs checked longest ago first'
            cand -w 'With --due: the workdir'
            cand --workdir 'With --due: the workdir'
            cand --origin 'Also check the live folder against the newest manifest: files whose size and mtime are unchanged but whose MD5 differs, and missing files'
            cand --due 'List the copies due for a check: last checked good longer ago than the set''s `check_every`, or never; most overdue first, with where each is. Reads the workdir (-w) only'
            cand --json 'A JSON report on stdout'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}

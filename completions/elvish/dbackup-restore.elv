
use builtin;
use str;

set edit:completion:arg-completer[dbackup-restore] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'dbackup-restore'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'dbackup-restore'= {
            cand -d 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc''s manifest gives the history'
            cand --disc 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc''s manifest gives the history'
            cand --to 'Where to restore to (created if missing). Nothing is written outside it'
            cand --as-of 'The state as of WHEN: a date (2024-05-01, meaning its end), a date-time (2024-05-01T12:00, local time unless it names a zone) or Unix seconds'
            cand --drive 'One drive and a pile of discs: ask for each needed disc in turn at this mount point'
            cand --rebuild-in 'Where the image of a disc not given is rebuilt from its parity group''s survivors and parity discs, one disc at a time (needs room for one image and its group''s recovery files). Default: $TMPDIR or /tmp'
            cand -i 'Match patterns case-insensitively'
            cand --ignore-case 'Match patterns case-insensitively'
            cand --dry-run 'Print the plan (discs needed, files, bytes); restore nothing'
            cand --overwrite 'Replace existing files that differ'
            cand --no-mode 'Do not give files and folders their recorded modes: they get the restoring user''s defaults (and no setuid or setgid)'
            cand --no-owner 'Do not give files, folders and links their recorded owners (given only when running as root; without, a file loses setuid and setgid)'
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

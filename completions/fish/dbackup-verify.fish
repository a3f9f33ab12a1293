complete -c dbackup-verify -s d -l disc -d 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc\'s manifest gives the history' -r -F
complete -c dbackup-verify -l record -d 'Record each disc\'s result (date, copy, files ok, damaged, unreadable, missing, and the names) in the catalogue of WORKDIR, the set\'s workdir, as each disc is done: `dbackup-stage copies` and `--due` read them' -r -F
complete -c dbackup-verify -l copy -d 'With --record: the copy that was read (see `dbackup-stage copies`). Default: a disc\'s only copy, when it has one' -r
complete -c dbackup-verify -l time-limit -d 'With --record: stop cleanly once DURATION has passed (90s, 45m for minutes, 5h, 1d), at the next batch of files; the next run goes on where this one stopped, and checks the discs checked longest ago first' -r
complete -c dbackup-verify -s w -l workdir -d 'With --due: the workdir' -r -F
complete -c dbackup-verify -l origin -d 'Also check the live folder against the newest manifest: files whose size and mtime are unchanged but whose MD5 differs, and missing files' -r -F
complete -c dbackup-verify -l due -d 'List the copies due for a check: last checked good longer ago than the set\'s `check_every`, or never; most overdue first, with where each is. Reads the workdir (-w) only'
complete -c dbackup-verify -l json -d 'A JSON report on stdout'
complete -c dbackup-verify -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-verify -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-verify -s h -l help -d 'Print help'
complete -c dbackup-verify -s V -l version -d 'Print version'

complete -c dbackup-restore -s d -l disc -d 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc\'s manifest gives the history' -r -F
complete -c dbackup-restore -l to -d 'Where to restore to (created if missing). Nothing is written outside it' -r -F
complete -c dbackup-restore -l as-of -d 'The state as of WHEN: a date (2024-05-01, meaning its end), a date-time (2024-05-01T12:00, local time unless it names a zone) or Unix seconds' -r
complete -c dbackup-restore -l drive -d 'One drive and a pile of discs: ask for each needed disc in turn at this mount point' -r -F
complete -c dbackup-restore -l rebuild-in -d 'Where the image of a disc not given is rebuilt from its parity group\'s survivors and parity discs, one disc at a time (needs room for one image and its group\'s recovery files). Default: $TMPDIR or /tmp' -r -F
complete -c dbackup-restore -s i -l ignore-case -d 'Match patterns case-insensitively'
complete -c dbackup-restore -l dry-run -d 'Print the plan (discs needed, files, bytes); restore nothing'
complete -c dbackup-restore -l overwrite -d 'Replace existing files that differ'
complete -c dbackup-restore -l no-mode -d 'Do not give files and folders their recorded modes: they get the restoring user\'s defaults (and no setuid or setgid)'
complete -c dbackup-restore -l no-owner -d 'Do not give files, folders and links their recorded owners (given only when running as root; without, a file loses setuid and setgid)'
complete -c dbackup-restore -l json -d 'A JSON report on stdout'
complete -c dbackup-restore -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-restore -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-restore -s h -l help -d 'Print help'
complete -c dbackup-restore -s V -l version -d 'Print version'

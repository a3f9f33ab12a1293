complete -c dbackup-find -s d -l disc -d 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc\'s manifest gives the history' -r -F
complete -c dbackup-find -l as-of -d 'The state as of WHEN: a date (2024-05-01, meaning its end), a date-time (2024-05-01T12:00, local time unless it names a zone) or Unix seconds' -r
complete -c dbackup-find -s i -l ignore-case -d 'Match patterns case-insensitively'
complete -c dbackup-find -l all-versions -d 'List every version (with its id and md5), not one row per file'
complete -c dbackup-find -l deleted -d 'List files recorded as deleted'
complete -c dbackup-find -l json -d 'A JSON array of objects on stdout'
complete -c dbackup-find -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-find -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-find -s h -l help -d 'Print help'
complete -c dbackup-find -s V -l version -d 'Print version'

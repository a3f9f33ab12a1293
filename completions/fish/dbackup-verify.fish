complete -c dbackup-verify -s d -l disc -d 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc\'s manifest gives the history' -r -F
complete -c dbackup-verify -l origin -d 'Also check the live folder against the newest manifest: files whose size and mtime are unchanged but whose MD5 differs, and missing files' -r -F
complete -c dbackup-verify -l json -d 'A JSON report on stdout'
complete -c dbackup-verify -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-verify -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-verify -s h -l help -d 'Print help'
complete -c dbackup-verify -s V -l version -d 'Print version'

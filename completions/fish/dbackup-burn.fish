complete -c dbackup-burn -s w -l workdir -d 'The workdir. Default: the current folder' -r -F
complete -c dbackup-burn -l disc -d 'The disc to burn: a data disc\'s number (3) or a parity disc (parity-1-2). Its image is isos/disc-3.iso or isos/parity-1-2.iso' -r
complete -c dbackup-burn -l device -d 'The burner, as xorriso names it: /dev/sr0, or stdio:PATH for a file (which is then the copy)' -r
complete -c dbackup-burn -l location -d 'Where the copy will be kept (a shelf, a drawer, an address)' -r
complete -c dbackup-burn -l speed -d 'The write speed, as xorriso takes it: 4, 8x, 4d, 2b, 5540k, min or max (default: the drive\'s choice)' -r
complete -c dbackup-burn -l dry-run -d 'Check the image and xorriso and print the xorriso command; burn and record nothing'
complete -c dbackup-burn -l json -d 'A JSON object on stdout instead of a line'
complete -c dbackup-burn -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-burn -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-burn -s h -l help -d 'Print help'
complete -c dbackup-burn -s V -l version -d 'Print version'

complete -c dbackup-mkiso -s w -l workdir -d 'The workdir. Default: the current folder' -r -F
complete -c dbackup-mkiso -l disc -d 'Only this disc (default: every closed disc without a verified image)' -r
complete -c dbackup-mkiso -l keep-staged -d 'Keep the staged copies after the image is verified'
complete -c dbackup-mkiso -l ecc -d 'Add dvdisaster error-correction data (also a setting: dbackup-stage config ecc on)'
complete -c dbackup-mkiso -l dry-run -d 'Say which images would be built; build nothing'
complete -c dbackup-mkiso -l json -d 'A JSON array of the images on stdout'
complete -c dbackup-mkiso -l label -d 'Also write each verified image\'s printable labels beside it (isos/disc-N.label.svg and .pdf, as `dbackup-stage label N`); a label that cannot be written is reported and leaves the image as it is. On by default with `dbackup-stage config labels on`'
complete -c dbackup-mkiso -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-mkiso -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-mkiso -s h -l help -d 'Print help'
complete -c dbackup-mkiso -s V -l version -d 'Print version'

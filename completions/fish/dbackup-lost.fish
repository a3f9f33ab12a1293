complete -c dbackup-lost -s w -l workdir -d 'The workdir. Default: the current folder' -r -F
complete -c dbackup-lost -l copy -d 'The copy of DISC that was lost (or, with --found, found): while another copy is held the disc is not lost (see dbackup-stage copies). With --restage, the disc\'s last copy: the disc is lost with it' -r
complete -c dbackup-lost -l manifest -d 'Work from a manifest.db alone (e.g. copied from the newest disc), without a workdir; reports only' -r -F
complete -c dbackup-lost -l origin -d 'The live folder to check (default: the set\'s watched folder)' -r -F
complete -c dbackup-lost -s d -l disc -d 'With --rebuild: a surviving data disc\'s image, a parity disc (mounted or an image), or a folder of images; repeat for each' -r -F
complete -c dbackup-lost -l to -d 'With --rebuild: the image file to write (must not exist)' -r -F
complete -c dbackup-lost -l what-if -d 'Report only; mark nothing'
complete -c dbackup-lost -l restage -d 'Stage again what the origin still holds, into the open disc'
complete -c dbackup-lost -l found -d 'Mark the discs available again'
complete -c dbackup-lost -l rebuild -d 'Rebuild the lost data disc\'s image (one DISC) from its parity group\'s surviving images and parity discs (--disc), into --to FILE; reads only the discs given, marks nothing'
complete -c dbackup-lost -l json -d 'A JSON report on stdout'
complete -c dbackup-lost -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-lost -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-lost -s h -l help -d 'Print help'
complete -c dbackup-lost -s V -l version -d 'Print version'

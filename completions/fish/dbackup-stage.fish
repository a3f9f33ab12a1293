# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_dbackup_stage_global_optspecs
    string join \n w/workdir= no-progress q/quiet h/help V/version
end

function __fish_dbackup_stage_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_dbackup_stage_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_dbackup_stage_using_subcommand
    set -l cmd (__fish_dbackup_stage_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -s V -l version -d 'Print version'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -f -a "init" -d 'Create a workdir that backs up WATCHED, with disc 1 open'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -f -a "status" -d 'Show the state of the workdir'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -f -a "monitor" -d 'Stage what changed in the watched folder (run it from cron)'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -f -a "close" -d 'Close the open disc now, open the next, and build the closed disc\'s image'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -f -a "adopt" -d 'Continue a set made by the original dBackup: adopt its working directory (settings.yaml, manifest.db, staging/, isos/), keeping every row and id; it is backed up first'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -f -a "config" -d 'Show every setting of the set, or show or change one: `disc_size` (of the discs not yet closed), `excludes`, `ecc` (on/off), `on_disc_ready` (a command), `parity` (K+M or off, for groups not yet started), `copies` (held per disc), `check_every` (a schedule), `report_html` (a status page rewritten after every run that changed something), `labels` (on: every image built gets its printable labels, as with `dbackup-mkiso --label`). `watched`, `name` and `uuid` are shown but fixed'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -f -a "report" -d 'Write a status page of the set (or of every set given with -w): one HTML file that opens from disk in any browser, with every disc, its copies and checks, what lost discs cost, a timeline, and a search that names the disc holding a file. Reads the catalogues only'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -f -a "copies" -d 'The copies of every disc: where each is and when it was last checked good; or record, move or lose one'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -f -a "label" -d 'Write the printable labels of a closed disc: a disc-face label (a 120 mm circle) and a case insert (a 120 mm square) with the set, the disc, its dates, size and top folders, and a QR code (dbackup:v1:UUID:DISC[:COPY]), as isos/disc-N.label.svg and isos/disc-N.label.pdf beside its image. Prints their paths'
complete -c dbackup-stage -n "__fish_dbackup_stage_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand init" -l disc-size -d 'Bytes per disc: a number, a size (700M, 4.3G, 4GiB) or a medium (cd, dvd, dvd-dl, bd25, bd50, bd100: 75% of its capacity, leaving room for error-correction data)' -r
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand init" -l exclude -d 'Leave out files and folders matching GLOB (repeatable). Without a `/` it matches a name at any depth; with one, the path from the watched folder' -r
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand init" -l name -d 'A human name for the set, written on every disc (default: the watched folder\'s name)' -r
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand init" -l on-disc-ready -d 'A shell command run when a disc image is ready, with DBACKUP_DISC, DBACKUP_ISO, DBACKUP_SET and DBACKUP_UUID in its environment' -r
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand init" -l parity -d 'Parity discs: for every K data discs, M parity discs (PAR2, needs par2), so any M discs of a group can be lost: e.g. 4+1 or 8+2' -r
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand init" -l copies -d 'How many copies of each disc should be held (default 1): `status` and `copies` name the discs held in fewer' -r
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand init" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand init" -l ecc -d 'Add dvdisaster error-correction data to every image (needs dvdisaster)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand init" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand init" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand init" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand status" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand status" -l json -d 'One JSON object instead of `Key: value` lines'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand status" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand status" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand status" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand monitor" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand monitor" -s c -l cron -d 'Compact output for cron: one summary line when something changed'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand monitor" -l dry-run -d 'Show what would be staged; change nothing'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand monitor" -l json -d 'A JSON report on stdout instead of lines'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand monitor" -l no-iso -d 'Do not build images of discs this run closes (leave them to dbackup-mkiso)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand monitor" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand monitor" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand monitor" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand close" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand close" -l json -d 'A JSON report on stdout'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand close" -l parity -d 'Also end the open parity group now and build its parity discs, so the newest discs need not wait for a full group (the open disc is closed only if it holds anything)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand close" -l no-iso -d 'Do not build the image now (leave it to dbackup-mkiso)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand close" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand close" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand close" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand adopt" -l name -d 'A human name for the set (default: the watched folder\'s name)' -r
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand adopt" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand adopt" -l dry-run -d 'Say what would be done; change nothing'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand adopt" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand adopt" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand adopt" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand config" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand config" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand config" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand config" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand report" -l html -d 'The page to write (replaced atomically)' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand report" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand report" -l json -d 'A JSON summary of what was written on stdout'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand report" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand report" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand report" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and not __fish_seen_subcommand_from add move lost found help" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and not __fish_seen_subcommand_from add move lost found help" -l json -d 'A JSON array on stdout instead of a table'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and not __fish_seen_subcommand_from add move lost found help" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and not __fish_seen_subcommand_from add move lost found help" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and not __fish_seen_subcommand_from add move lost found help" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and not __fish_seen_subcommand_from add move lost found help" -f -a "add" -d 'Record a copy of DISC burned by hand (it was never read back by dbackup, so it is due for a check at once)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and not __fish_seen_subcommand_from add move lost found help" -f -a "move" -d 'Record that copy COPY of DISC is now kept at another place'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and not __fish_seen_subcommand_from add move lost found help" -f -a "lost" -d 'Mark copy COPY of DISC lost while another copy is held (a data disc\'s last copy is lost with the disc: `dbackup-lost DISC --copy COPY`)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and not __fish_seen_subcommand_from add move lost found help" -f -a "found" -d 'Mark copy COPY of DISC found again'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and not __fish_seen_subcommand_from add move lost found help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from add" -l location -d 'Where the copy is kept (a shelf, a drawer, an address)' -r
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from add" -l medium -d 'The medium (DVD+R, BD-R, M-DISC BD-R ...)' -r
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from add" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from add" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from move" -l location -d 'Where it is kept now' -r
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from move" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from move" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from move" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from move" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from lost" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from lost" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from lost" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from lost" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from found" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from found" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from found" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from found" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from help" -f -a "add" -d 'Record a copy of DISC burned by hand (it was never read back by dbackup, so it is due for a check at once)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from help" -f -a "move" -d 'Record that copy COPY of DISC is now kept at another place'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from help" -f -a "lost" -d 'Mark copy COPY of DISC lost while another copy is held (a data disc\'s last copy is lost with the disc: `dbackup-lost DISC --copy COPY`)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from help" -f -a "found" -d 'Mark copy COPY of DISC found again'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand copies; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand label" -l copy -d 'The copy the label is for: it goes into the QR code and the file names (disc-N-copy-C.label.svg)' -r
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand label" -s w -l workdir -d 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each' -r -F
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand label" -l json -d 'A JSON object on stdout instead of the two paths'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand label" -l no-progress -d 'Never draw progress bars (they appear only on a terminal anyway)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand label" -s q -l quiet -d 'Print only errors and results'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand label" -s h -l help -d 'Print help'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and not __fish_seen_subcommand_from init status monitor close adopt config report copies label help" -f -a "init" -d 'Create a workdir that backs up WATCHED, with disc 1 open'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and not __fish_seen_subcommand_from init status monitor close adopt config report copies label help" -f -a "status" -d 'Show the state of the workdir'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and not __fish_seen_subcommand_from init status monitor close adopt config report copies label help" -f -a "monitor" -d 'Stage what changed in the watched folder (run it from cron)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and not __fish_seen_subcommand_from init status monitor close adopt config report copies label help" -f -a "close" -d 'Close the open disc now, open the next, and build the closed disc\'s image'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and not __fish_seen_subcommand_from init status monitor close adopt config report copies label help" -f -a "adopt" -d 'Continue a set made by the original dBackup: adopt its working directory (settings.yaml, manifest.db, staging/, isos/), keeping every row and id; it is backed up first'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and not __fish_seen_subcommand_from init status monitor close adopt config report copies label help" -f -a "config" -d 'Show every setting of the set, or show or change one: `disc_size` (of the discs not yet closed), `excludes`, `ecc` (on/off), `on_disc_ready` (a command), `parity` (K+M or off, for groups not yet started), `copies` (held per disc), `check_every` (a schedule), `report_html` (a status page rewritten after every run that changed something), `labels` (on: every image built gets its printable labels, as with `dbackup-mkiso --label`). `watched`, `name` and `uuid` are shown but fixed'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and not __fish_seen_subcommand_from init status monitor close adopt config report copies label help" -f -a "report" -d 'Write a status page of the set (or of every set given with -w): one HTML file that opens from disk in any browser, with every disc, its copies and checks, what lost discs cost, a timeline, and a search that names the disc holding a file. Reads the catalogues only'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and not __fish_seen_subcommand_from init status monitor close adopt config report copies label help" -f -a "copies" -d 'The copies of every disc: where each is and when it was last checked good; or record, move or lose one'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and not __fish_seen_subcommand_from init status monitor close adopt config report copies label help" -f -a "label" -d 'Write the printable labels of a closed disc: a disc-face label (a 120 mm circle) and a case insert (a 120 mm square) with the set, the disc, its dates, size and top folders, and a QR code (dbackup:v1:UUID:DISC[:COPY]), as isos/disc-N.label.svg and isos/disc-N.label.pdf beside its image. Prints their paths'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and not __fish_seen_subcommand_from init status monitor close adopt config report copies label help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and __fish_seen_subcommand_from copies" -f -a "add" -d 'Record a copy of DISC burned by hand (it was never read back by dbackup, so it is due for a check at once)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and __fish_seen_subcommand_from copies" -f -a "move" -d 'Record that copy COPY of DISC is now kept at another place'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and __fish_seen_subcommand_from copies" -f -a "lost" -d 'Mark copy COPY of DISC lost while another copy is held (a data disc\'s last copy is lost with the disc: `dbackup-lost DISC --copy COPY`)'
complete -c dbackup-stage -n "__fish_dbackup_stage_using_subcommand help; and __fish_seen_subcommand_from copies" -f -a "found" -d 'Mark copy COPY of DISC found again'

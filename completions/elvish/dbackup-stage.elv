
use builtin;
use str;

set edit:completion:arg-completer[dbackup-stage] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'dbackup-stage'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'dbackup-stage'= {
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand init 'Create a workdir that backs up WATCHED, with disc 1 open'
            cand status 'Show the state of the workdir'
            cand monitor 'Stage what changed in the watched folder (run it from cron)'
            cand close 'Close the open disc now, open the next, and build the closed disc''s image'
            cand adopt 'Continue a set made by the original dBackup: adopt its working directory (settings.yaml, manifest.db, staging/, isos/), keeping every row and id; it is backed up first'
            cand config 'Show every setting of the set, or show or change one: `disc_size` (of the discs not yet closed), `excludes`, `ecc` (on/off), `on_disc_ready` (a command), `parity` (K+M or off, for groups not yet started), `copies` (held per disc), `check_every` (a schedule), `report_html` (a status page rewritten after every run that changed something), `labels` (on: every image built gets its printable labels, as with `dbackup-mkiso --label`). `watched`, `name` and `uuid` are shown but fixed'
            cand report 'Write a status page of the set (or of every set given with -w): one HTML file that opens from disk in any browser, with every disc, its copies and checks, what lost discs cost, a timeline, and a search that names the disc holding a file. Reads the catalogues only'
            cand copies 'The copies of every disc: where each is and when it was last checked good; or record, move or lose one'
            cand label 'Write the printable labels of a closed disc: a disc-face label (a 120 mm circle) and a case insert (a 120 mm square) with the set, the disc, its dates, size and top folders, and a QR code (dbackup:v1:UUID:DISC[:COPY]), as isos/disc-N.label.svg and isos/disc-N.label.pdf beside its image. Prints their paths'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbackup-stage;init'= {
            cand --disc-size 'Bytes per disc: a number, a size (700M, 4.3G, 4GiB) or a medium (cd, dvd, dvd-dl, bd25, bd50, bd100: 75% of its capacity, leaving room for error-correction data)'
            cand --exclude 'Leave out files and folders matching GLOB (repeatable). Without a `/` it matches a name at any depth; with one, the path from the watched folder'
            cand --name 'A human name for the set, written on every disc (default: the watched folder''s name)'
            cand --on-disc-ready 'A shell command run when a disc image is ready, with DBACKUP_DISC, DBACKUP_ISO, DBACKUP_SET and DBACKUP_UUID in its environment'
            cand --parity 'Parity discs: for every K data discs, M parity discs (PAR2, needs par2), so any M discs of a group can be lost: e.g. 4+1 or 8+2'
            cand --copies 'How many copies of each disc should be held (default 1): `status` and `copies` name the discs held in fewer'
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --ecc 'Add dvdisaster error-correction data to every image (needs dvdisaster)'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;status'= {
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --json 'One JSON object instead of `Key: value` lines'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;monitor'= {
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand -c 'Compact output for cron: one summary line when something changed'
            cand --cron 'Compact output for cron: one summary line when something changed'
            cand --dry-run 'Show what would be staged; change nothing'
            cand --json 'A JSON report on stdout instead of lines'
            cand --no-iso 'Do not build images of discs this run closes (leave them to dbackup-mkiso)'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;close'= {
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --json 'A JSON report on stdout'
            cand --parity 'Also end the open parity group now and build its parity discs, so the newest discs need not wait for a full group (the open disc is closed only if it holds anything)'
            cand --no-iso 'Do not build the image now (leave it to dbackup-mkiso)'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;adopt'= {
            cand --name 'A human name for the set (default: the watched folder''s name)'
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --dry-run 'Say what would be done; change nothing'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;config'= {
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;report'= {
            cand --html 'The page to write (replaced atomically)'
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --json 'A JSON summary of what was written on stdout'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;copies'= {
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --json 'A JSON array on stdout instead of a table'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
            cand add 'Record a copy of DISC burned by hand (it was never read back by dbackup, so it is due for a check at once)'
            cand move 'Record that copy COPY of DISC is now kept at another place'
            cand lost 'Mark copy COPY of DISC lost while another copy is held (a data disc''s last copy is lost with the disc: `dbackup-lost DISC --copy COPY`)'
            cand found 'Mark copy COPY of DISC found again'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbackup-stage;copies;add'= {
            cand --location 'Where the copy is kept (a shelf, a drawer, an address)'
            cand --medium 'The medium (DVD+R, BD-R, M-DISC BD-R ...)'
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;copies;move'= {
            cand --location 'Where it is kept now'
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;copies;lost'= {
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;copies;found'= {
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;copies;help'= {
            cand add 'Record a copy of DISC burned by hand (it was never read back by dbackup, so it is due for a check at once)'
            cand move 'Record that copy COPY of DISC is now kept at another place'
            cand lost 'Mark copy COPY of DISC lost while another copy is held (a data disc''s last copy is lost with the disc: `dbackup-lost DISC --copy COPY`)'
            cand found 'Mark copy COPY of DISC found again'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbackup-stage;copies;help;add'= {
        }
        &'dbackup-stage;copies;help;move'= {
        }
        &'dbackup-stage;copies;help;lost'= {
        }
        &'dbackup-stage;copies;help;found'= {
        }
        &'dbackup-stage;copies;help;help'= {
        }
        &'dbackup-stage;label'= {
            cand --copy 'The copy the label is for: it goes into the QR code and the file names (disc-N-copy-C.label.svg)'
            cand -w 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --workdir 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each'
            cand --json 'A JSON object on stdout instead of the two paths'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dbackup-stage;help'= {
            cand init 'Create a workdir that backs up WATCHED, with disc 1 open'
            cand status 'Show the state of the workdir'
            cand monitor 'Stage what changed in the watched folder (run it from cron)'
            cand close 'Close the open disc now, open the next, and build the closed disc''s image'
            cand adopt 'Continue a set made by the original dBackup: adopt its working directory (settings.yaml, manifest.db, staging/, isos/), keeping every row and id; it is backed up first'
            cand config 'Show every setting of the set, or show or change one: `disc_size` (of the discs not yet closed), `excludes`, `ecc` (on/off), `on_disc_ready` (a command), `parity` (K+M or off, for groups not yet started), `copies` (held per disc), `check_every` (a schedule), `report_html` (a status page rewritten after every run that changed something), `labels` (on: every image built gets its printable labels, as with `dbackup-mkiso --label`). `watched`, `name` and `uuid` are shown but fixed'
            cand report 'Write a status page of the set (or of every set given with -w): one HTML file that opens from disk in any browser, with every disc, its copies and checks, what lost discs cost, a timeline, and a search that names the disc holding a file. Reads the catalogues only'
            cand copies 'The copies of every disc: where each is and when it was last checked good; or record, move or lose one'
            cand label 'Write the printable labels of a closed disc: a disc-face label (a 120 mm circle) and a case insert (a 120 mm square) with the set, the disc, its dates, size and top folders, and a QR code (dbackup:v1:UUID:DISC[:COPY]), as isos/disc-N.label.svg and isos/disc-N.label.pdf beside its image. Prints their paths'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbackup-stage;help;init'= {
        }
        &'dbackup-stage;help;status'= {
        }
        &'dbackup-stage;help;monitor'= {
        }
        &'dbackup-stage;help;close'= {
        }
        &'dbackup-stage;help;adopt'= {
        }
        &'dbackup-stage;help;config'= {
        }
        &'dbackup-stage;help;report'= {
        }
        &'dbackup-stage;help;copies'= {
            cand add 'Record a copy of DISC burned by hand (it was never read back by dbackup, so it is due for a check at once)'
            cand move 'Record that copy COPY of DISC is now kept at another place'
            cand lost 'Mark copy COPY of DISC lost while another copy is held (a data disc''s last copy is lost with the disc: `dbackup-lost DISC --copy COPY`)'
            cand found 'Mark copy COPY of DISC found again'
        }
        &'dbackup-stage;help;copies;add'= {
        }
        &'dbackup-stage;help;copies;move'= {
        }
        &'dbackup-stage;help;copies;lost'= {
        }
        &'dbackup-stage;help;copies;found'= {
        }
        &'dbackup-stage;help;label'= {
        }
        &'dbackup-stage;help;help'= {
        }
    ]
    $completions[$command]
}

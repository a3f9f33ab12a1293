
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dbackup-stage' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dbackup-stage'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'dbackup-stage' {
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a workdir that backs up WATCHED, with disc 1 open')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the state of the workdir')
            [CompletionResult]::new('monitor', 'monitor', [CompletionResultType]::ParameterValue, 'Stage what changed in the watched folder (run it from cron)')
            [CompletionResult]::new('close', 'close', [CompletionResultType]::ParameterValue, 'Close the open disc now, open the next, and build the closed disc''s image')
            [CompletionResult]::new('adopt', 'adopt', [CompletionResultType]::ParameterValue, 'Continue a set made by the original dBackup: adopt its working directory (settings.yaml, manifest.db, staging/, isos/), keeping every row and id; it is backed up first')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Show every setting of the set, or show or change one: `disc_size` (of the discs not yet closed), `excludes`, `ecc` (on/off), `on_disc_ready` (a command), `parity` (K+M or off, for groups not yet started), `copies` (held per disc), `check_every` (a schedule), `report_html` (a status page rewritten after every run that changed something), `labels` (on: every image built gets its printable labels, as with `dbackup-mkiso --label`). `watched`, `name` and `uuid` are shown but fixed')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Write a status page of the set (or of every set given with -w): one HTML file that opens from disk in any browser, with every disc, its copies and checks, what lost discs cost, a timeline, and a search that names the disc holding a file. Reads the catalogues only')
            [CompletionResult]::new('copies', 'copies', [CompletionResultType]::ParameterValue, 'The copies of every disc: where each is and when it was last checked good; or record, move or lose one')
            [CompletionResult]::new('label', 'label', [CompletionResultType]::ParameterValue, 'Write the printable labels of a closed disc: a disc-face label (a 120 mm circle) and a case insert (a 120 mm square) with the set, the disc, its dates, size and top folders, and a QR code (dbackup:v1:UUID:DISC[:COPY]), as isos/disc-N.label.svg and isos/disc-N.label.pdf beside its image. Prints their paths')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbackup-stage;init' {
            [CompletionResult]::new('--disc-size', '--disc-size', [CompletionResultType]::ParameterName, 'Bytes per disc: a number, a size (700M, 4.3G, 4GiB) or a medium (cd, dvd, dvd-dl, bd25, bd50, bd100: 75% of its capacity, leaving room for error-correction data)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'Leave out files and folders matching GLOB (repeatable). Without a `/` it matches a name at any depth; with one, the path from the watched folder')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'A human name for the set, written on every disc (default: the watched folder''s name)')
            [CompletionResult]::new('--on-disc-ready', '--on-disc-ready', [CompletionResultType]::ParameterName, 'A shell command run when a disc image is ready, with DBACKUP_DISC, DBACKUP_ISO, DBACKUP_SET and DBACKUP_UUID in its environment')
            [CompletionResult]::new('--parity', '--parity', [CompletionResultType]::ParameterName, 'Parity discs: for every K data discs, M parity discs (PAR2, needs par2), so any M discs of a group can be lost: e.g. 4+1 or 8+2')
            [CompletionResult]::new('--copies', '--copies', [CompletionResultType]::ParameterName, 'How many copies of each disc should be held (default 1): `status` and `copies` name the discs held in fewer')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--ecc', '--ecc', [CompletionResultType]::ParameterName, 'Add dvdisaster error-correction data to every image (needs dvdisaster)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;status' {
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object instead of `Key: value` lines')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;monitor' {
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Compact output for cron: one summary line when something changed')
            [CompletionResult]::new('--cron', '--cron', [CompletionResultType]::ParameterName, 'Compact output for cron: one summary line when something changed')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be staged; change nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'A JSON report on stdout instead of lines')
            [CompletionResult]::new('--no-iso', '--no-iso', [CompletionResultType]::ParameterName, 'Do not build images of discs this run closes (leave them to dbackup-mkiso)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;close' {
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'A JSON report on stdout')
            [CompletionResult]::new('--parity', '--parity', [CompletionResultType]::ParameterName, 'Also end the open parity group now and build its parity discs, so the newest discs need not wait for a full group (the open disc is closed only if it holds anything)')
            [CompletionResult]::new('--no-iso', '--no-iso', [CompletionResultType]::ParameterName, 'Do not build the image now (leave it to dbackup-mkiso)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;adopt' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'A human name for the set (default: the watched folder''s name)')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Say what would be done; change nothing')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;config' {
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;report' {
            [CompletionResult]::new('--html', '--html', [CompletionResultType]::ParameterName, 'The page to write (replaced atomically)')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'A JSON summary of what was written on stdout')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;copies' {
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'A JSON array on stdout instead of a table')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Record a copy of DISC burned by hand (it was never read back by dbackup, so it is due for a check at once)')
            [CompletionResult]::new('move', 'move', [CompletionResultType]::ParameterValue, 'Record that copy COPY of DISC is now kept at another place')
            [CompletionResult]::new('lost', 'lost', [CompletionResultType]::ParameterValue, 'Mark copy COPY of DISC lost while another copy is held (a data disc''s last copy is lost with the disc: `dbackup-lost DISC --copy COPY`)')
            [CompletionResult]::new('found', 'found', [CompletionResultType]::ParameterValue, 'Mark copy COPY of DISC found again')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbackup-stage;copies;add' {
            [CompletionResult]::new('--location', '--location', [CompletionResultType]::ParameterName, 'Where the copy is kept (a shelf, a drawer, an address)')
            [CompletionResult]::new('--medium', '--medium', [CompletionResultType]::ParameterName, 'The medium (DVD+R, BD-R, M-DISC BD-R ...)')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;copies;move' {
            [CompletionResult]::new('--location', '--location', [CompletionResultType]::ParameterName, 'Where it is kept now')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;copies;lost' {
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;copies;found' {
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;copies;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Record a copy of DISC burned by hand (it was never read back by dbackup, so it is due for a check at once)')
            [CompletionResult]::new('move', 'move', [CompletionResultType]::ParameterValue, 'Record that copy COPY of DISC is now kept at another place')
            [CompletionResult]::new('lost', 'lost', [CompletionResultType]::ParameterValue, 'Mark copy COPY of DISC lost while another copy is held (a data disc''s last copy is lost with the disc: `dbackup-lost DISC --copy COPY`)')
            [CompletionResult]::new('found', 'found', [CompletionResultType]::ParameterValue, 'Mark copy COPY of DISC found again')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbackup-stage;copies;help;add' {
            break
        }
        'dbackup-stage;copies;help;move' {
            break
        }
        'dbackup-stage;copies;help;lost' {
            break
        }
        'dbackup-stage;copies;help;found' {
            break
        }
        'dbackup-stage;copies;help;help' {
            break
        }
        'dbackup-stage;label' {
            [CompletionResult]::new('--copy', '--copy', [CompletionResultType]::ParameterName, 'The copy the label is for: it goes into the QR code and the file names (disc-N-copy-C.label.svg)')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir (catalogue, staging area, images). Default: the current folder. `report` takes several, one set each')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'A JSON object on stdout instead of the two paths')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dbackup-stage;help' {
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a workdir that backs up WATCHED, with disc 1 open')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the state of the workdir')
            [CompletionResult]::new('monitor', 'monitor', [CompletionResultType]::ParameterValue, 'Stage what changed in the watched folder (run it from cron)')
            [CompletionResult]::new('close', 'close', [CompletionResultType]::ParameterValue, 'Close the open disc now, open the next, and build the closed disc''s image')
            [CompletionResult]::new('adopt', 'adopt', [CompletionResultType]::ParameterValue, 'Continue a set made by the original dBackup: adopt its working directory (settings.yaml, manifest.db, staging/, isos/), keeping every row and id; it is backed up first')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Show every setting of the set, or show or change one: `disc_size` (of the discs not yet closed), `excludes`, `ecc` (on/off), `on_disc_ready` (a command), `parity` (K+M or off, for groups not yet started), `copies` (held per disc), `check_every` (a schedule), `report_html` (a status page rewritten after every run that changed something), `labels` (on: every image built gets its printable labels, as with `dbackup-mkiso --label`). `watched`, `name` and `uuid` are shown but fixed')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Write a status page of the set (or of every set given with -w): one HTML file that opens from disk in any browser, with every disc, its copies and checks, what lost discs cost, a timeline, and a search that names the disc holding a file. Reads the catalogues only')
            [CompletionResult]::new('copies', 'copies', [CompletionResultType]::ParameterValue, 'The copies of every disc: where each is and when it was last checked good; or record, move or lose one')
            [CompletionResult]::new('label', 'label', [CompletionResultType]::ParameterValue, 'Write the printable labels of a closed disc: a disc-face label (a 120 mm circle) and a case insert (a 120 mm square) with the set, the disc, its dates, size and top folders, and a QR code (dbackup:v1:UUID:DISC[:COPY]), as isos/disc-N.label.svg and isos/disc-N.label.pdf beside its image. Prints their paths')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbackup-stage;help;init' {
            break
        }
        'dbackup-stage;help;status' {
            break
        }
        'dbackup-stage;help;monitor' {
            break
        }
        'dbackup-stage;help;close' {
            break
        }
        'dbackup-stage;help;adopt' {
            break
        }
        'dbackup-stage;help;config' {
            break
        }
        'dbackup-stage;help;report' {
            break
        }
        'dbackup-stage;help;copies' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Record a copy of DISC burned by hand (it was never read back by dbackup, so it is due for a check at once)')
            [CompletionResult]::new('move', 'move', [CompletionResultType]::ParameterValue, 'Record that copy COPY of DISC is now kept at another place')
            [CompletionResult]::new('lost', 'lost', [CompletionResultType]::ParameterValue, 'Mark copy COPY of DISC lost while another copy is held (a data disc''s last copy is lost with the disc: `dbackup-lost DISC --copy COPY`)')
            [CompletionResult]::new('found', 'found', [CompletionResultType]::ParameterValue, 'Mark copy COPY of DISC found again')
            break
        }
        'dbackup-stage;help;copies;add' {
            break
        }
        'dbackup-stage;help;copies;move' {
            break
        }
        'dbackup-stage;help;copies;lost' {
            break
        }
        'dbackup-stage;help;copies;found' {
            break
        }
        'dbackup-stage;help;label' {
            break
        }
        'dbackup-stage;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}


using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dbackup-verify' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dbackup-verify'
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
        'dbackup-verify' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc''s manifest gives the history')
            [CompletionResult]::new('--disc', '--disc', [CompletionResultType]::ParameterName, 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc''s manifest gives the history')
            [CompletionResult]::new('--record', '--record', [CompletionResultType]::ParameterName, 'Record each disc''s result (date, copy, files ok, damaged, unreadable, missing, and the names) in the catalogue of WORKDIR, the set''s workdir, as each disc is done: `dbackup-stage copies` and `--due` read them')
            [CompletionResult]::new('--copy', '--copy', [CompletionResultType]::ParameterName, 'With --record: the copy that was read (see `dbackup-stage copies`). Default: a disc''s only copy, when it has one')
            [CompletionResult]::new('--time-limit', '--time-limit', [CompletionResultType]::ParameterName, 'With --record: stop cleanly once DURATION has passed (90s, 45m for minutes, 5h, 1d), at the next batch of files; the next run goes on where this one stopped, and checks the discs checked longest ago first')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'With --due: the workdir')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'With --due: the workdir')
            [CompletionResult]::new('--origin', '--origin', [CompletionResultType]::ParameterName, 'Also check the live folder against the newest manifest: files whose size and mtime are unchanged but whose MD5 differs, and missing files')
            [CompletionResult]::new('--due', '--due', [CompletionResultType]::ParameterName, 'List the copies due for a check: last checked good longer ago than the set''s `check_every`, or never; most overdue first, with where each is. Reads the workdir (-w) only')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'A JSON report on stdout')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never draw progress bars (they appear only on a terminal anyway)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors and results')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}

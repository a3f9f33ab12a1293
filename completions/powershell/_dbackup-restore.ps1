
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dbackup-restore' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dbackup-restore'
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
        'dbackup-restore' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc''s manifest gives the history')
            [CompletionResult]::new('--disc', '--disc', [CompletionResultType]::ParameterName, 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc''s manifest gives the history')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Where to restore to (created if missing). Nothing is written outside it')
            [CompletionResult]::new('--as-of', '--as-of', [CompletionResultType]::ParameterName, 'The state as of WHEN: a date (2024-05-01, meaning its end), a date-time (2024-05-01T12:00, local time unless it names a zone) or Unix seconds')
            [CompletionResult]::new('--drive', '--drive', [CompletionResultType]::ParameterName, 'One drive and a pile of discs: ask for each needed disc in turn at this mount point')
            [CompletionResult]::new('--rebuild-in', '--rebuild-in', [CompletionResultType]::ParameterName, 'Where the image of a disc not given is rebuilt from its parity group''s survivors and parity discs, one disc at a time (needs room for one image and its group''s recovery files). Default: $TMPDIR or /tmp')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Match patterns case-insensitively')
            [CompletionResult]::new('--ignore-case', '--ignore-case', [CompletionResultType]::ParameterName, 'Match patterns case-insensitively')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan (discs needed, files, bytes); restore nothing')
            [CompletionResult]::new('--overwrite', '--overwrite', [CompletionResultType]::ParameterName, 'Replace existing files that differ')
            [CompletionResult]::new('--no-mode', '--no-mode', [CompletionResultType]::ParameterName, 'Do not give files and folders their recorded modes: they get the restoring user''s defaults (and no setuid or setgid)')
            [CompletionResult]::new('--no-owner', '--no-owner', [CompletionResultType]::ParameterName, 'Do not give files, folders and links their recorded owners (given only when running as root; without, a file loses setuid and setgid)')
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

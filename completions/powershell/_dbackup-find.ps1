
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dbackup-find' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dbackup-find'
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
        'dbackup-find' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc''s manifest gives the history')
            [CompletionResult]::new('--disc', '--disc', [CompletionResultType]::ParameterName, 'A disc: a mounted disc (a folder with manifest.db at its root), an .iso image, or a folder holding .iso images. Repeatable; the newest disc''s manifest gives the history')
            [CompletionResult]::new('--as-of', '--as-of', [CompletionResultType]::ParameterName, 'The state as of WHEN: a date (2024-05-01, meaning its end), a date-time (2024-05-01T12:00, local time unless it names a zone) or Unix seconds')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Match patterns case-insensitively')
            [CompletionResult]::new('--ignore-case', '--ignore-case', [CompletionResultType]::ParameterName, 'Match patterns case-insensitively')
            [CompletionResult]::new('--all-versions', '--all-versions', [CompletionResultType]::ParameterName, 'List every version (with its id and md5), not one row per file')
            [CompletionResult]::new('--deleted', '--deleted', [CompletionResultType]::ParameterName, 'List files recorded as deleted')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'A JSON array of objects on stdout')
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

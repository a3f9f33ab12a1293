
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dbackup-mkiso' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dbackup-mkiso'
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
        'dbackup-mkiso' {
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir. Default: the current folder')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir. Default: the current folder')
            [CompletionResult]::new('--disc', '--disc', [CompletionResultType]::ParameterName, 'Only this disc (default: every closed disc without a verified image)')
            [CompletionResult]::new('--keep-staged', '--keep-staged', [CompletionResultType]::ParameterName, 'Keep the staged copies after the image is verified')
            [CompletionResult]::new('--ecc', '--ecc', [CompletionResultType]::ParameterName, 'Add dvdisaster error-correction data (also a setting: dbackup-stage config ecc on)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Say which images would be built; build nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'A JSON array of the images on stdout')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'Also write each verified image''s printable labels beside it (isos/disc-N.label.svg and .pdf, as `dbackup-stage label N`); a label that cannot be written is reported and leaves the image as it is. On by default with `dbackup-stage config labels on`')
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

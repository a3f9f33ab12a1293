
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dbackup-burn' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dbackup-burn'
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
        'dbackup-burn' {
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir. Default: the current folder')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir. Default: the current folder')
            [CompletionResult]::new('--disc', '--disc', [CompletionResultType]::ParameterName, 'The disc to burn: a data disc''s number (3) or a parity disc (parity-1-2). Its image is isos/disc-3.iso or isos/parity-1-2.iso')
            [CompletionResult]::new('--device', '--device', [CompletionResultType]::ParameterName, 'The burner, as xorriso names it: /dev/sr0, or stdio:PATH for a file (which is then the copy)')
            [CompletionResult]::new('--location', '--location', [CompletionResultType]::ParameterName, 'Where the copy will be kept (a shelf, a drawer, an address)')
            [CompletionResult]::new('--speed', '--speed', [CompletionResultType]::ParameterName, 'The write speed, as xorriso takes it: 4, 8x, 4d, 2b, 5540k, min or max (default: the drive''s choice)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Check the image and xorriso and print the xorriso command; burn and record nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'A JSON object on stdout instead of a line')
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


using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dbackup-lost' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dbackup-lost'
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
        'dbackup-lost' {
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'The workdir. Default: the current folder')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'The workdir. Default: the current folder')
            [CompletionResult]::new('--copy', '--copy', [CompletionResultType]::ParameterName, 'The copy of DISC that was lost (or, with --found, found): while another copy is held the disc is not lost (see dbackup-stage copies). With --restage, the disc''s last copy: the disc is lost with it')
            [CompletionResult]::new('--manifest', '--manifest', [CompletionResultType]::ParameterName, 'Work from a manifest.db alone (e.g. copied from the newest disc), without a workdir; reports only')
            [CompletionResult]::new('--origin', '--origin', [CompletionResultType]::ParameterName, 'The live folder to check (default: the set''s watched folder)')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'With --rebuild: a surviving data disc''s image, a parity disc (mounted or an image), or a folder of images; repeat for each')
            [CompletionResult]::new('--disc', '--disc', [CompletionResultType]::ParameterName, 'With --rebuild: a surviving data disc''s image, a parity disc (mounted or an image), or a folder of images; repeat for each')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'With --rebuild: the image file to write (must not exist)')
            [CompletionResult]::new('--what-if', '--what-if', [CompletionResultType]::ParameterName, 'Report only; mark nothing')
            [CompletionResult]::new('--restage', '--restage', [CompletionResultType]::ParameterName, 'Stage again what the origin still holds, into the open disc')
            [CompletionResult]::new('--found', '--found', [CompletionResultType]::ParameterName, 'Mark the discs available again')
            [CompletionResult]::new('--rebuild', '--rebuild', [CompletionResultType]::ParameterName, 'Rebuild the lost data disc''s image (one DISC) from its parity group''s surviving images and parity discs (--disc), into --to FILE; reads only the discs given, marks nothing')
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

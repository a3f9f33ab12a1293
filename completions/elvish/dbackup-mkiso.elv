
use builtin;
use str;

set edit:completion:arg-completer[dbackup-mkiso] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'dbackup-mkiso'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'dbackup-mkiso'= {
            cand -w 'The workdir. Default: the current folder'
            cand --workdir 'The workdir. Default: the current folder'
            cand --disc 'Only this disc (default: every closed disc without a verified image)'
            cand --keep-staged 'Keep the staged copies after the image is verified'
            cand --ecc 'Add dvdisaster error-correction data (also a setting: dbackup-stage config ecc on)'
            cand --dry-run 'Say which images would be built; build nothing'
            cand --json 'A JSON array of the images on stdout'
            cand --label 'Also write each verified image''s printable labels beside it (isos/disc-N.label.svg and .pdf, as `dbackup-stage label N`); a label that cannot be written is reported and leaves the image as it is. On by default with `dbackup-stage config labels on`'
            cand --no-progress 'Never draw progress bars (they appear only on a terminal anyway)'
            cand -q 'Print only errors and results'
            cand --quiet 'Print only errors and results'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}


use builtin;
use str;

set edit:completion:arg-completer[dbackup-burn] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'dbackup-burn'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'dbackup-burn'= {
            cand -w 'The workdir. Default: the current folder'
            cand --workdir 'The workdir. Default: the current folder'
            cand --disc 'The disc to burn: a data disc''s number (3) or a parity disc (parity-1-2). Its image is isos/disc-3.iso or isos/parity-1-2.iso'
            cand --device 'The burner, as xorriso names it: /dev/sr0, or stdio:PATH for a file (which is then the copy)'
            cand --location 'Where the copy will be kept (a shelf, a drawer, an address)'
            cand --speed 'The write speed, as xorriso takes it: 4, 8x, 4d, 2b, 5540k, min or max (default: the drive''s choice)'
            cand --dry-run 'Check the image and xorriso and print the xorriso command; burn and record nothing'
            cand --json 'A JSON object on stdout instead of a line'
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


use builtin;
use str;

set edit:completion:arg-completer[dbackup-lost] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'dbackup-lost'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'dbackup-lost'= {
            cand -w 'The workdir. Default: the current folder'
            cand --workdir 'The workdir. Default: the current folder'
            cand --copy 'The copy of DISC that was lost (or, with --found, found): while another copy is held the disc is not lost (see dbackup-stage copies). With --restage, the disc''s last copy: the disc is lost with it'
            cand --manifest 'Work from a manifest.db alone (e.g. copied from the newest disc), without a workdir; reports only'
            cand --origin 'The live folder to check (default: the set''s watched folder)'
            cand -d 'With --rebuild: a surviving data disc''s image, a parity disc (mounted or an image), or a folder of images; repeat for each'
            cand --disc 'With --rebuild: a surviving data disc''s image, a parity disc (mounted or an image), or a folder of images; repeat for each'
            cand --to 'With --rebuild: the image file to write (must not exist)'
            cand --what-if 'Report only; mark nothing'
            cand --restage 'Stage again what the origin still holds, into the open disc'
            cand --found 'Mark the discs available again'
            cand --rebuild 'Rebuild the lost data disc''s image (one DISC) from its parity group''s surviving images and parity discs (--disc), into --to FILE; reads only the discs given, marks nothing'
            cand --json 'A JSON report on stdout'
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

//! What a set held at a given time, from a manifest: for each file chosen
//! by glob patterns, its versions up to that time, the one current then,
//! and whether it had been deleted by then. Shared by find and restore.

use glob::{MatchOptions, Pattern};

use crate::catalog::manifest::{Entry, Manifest, ManifestError, Tree, Version};
use crate::names;

/// Glob patterns over the original paths. A pattern without `/` matches the
/// file name in any folder; one with `/` matches the whole path from the
/// set's root (a leading `/` is allowed). `*` stays within a folder, `**`
/// crosses folders.
#[derive(Debug, Clone)]
pub struct Matcher {
    by_name: Vec<Pattern>,
    by_path: Vec<Pattern>,
    sources: Vec<String>,
    options: MatchOptions,
}

impl Matcher {
    /// Compiles the patterns; none means every file.
    pub fn new(patterns: &[String], ignore_case: bool) -> Result<Matcher, String> {
        let mut m = Matcher {
            by_name: Vec::new(),
            by_path: Vec::new(),
            sources: patterns.to_vec(),
            options: MatchOptions {
                case_sensitive: !ignore_case,
                require_literal_separator: true,
                require_literal_leading_dot: false,
            },
        };
        for p in patterns {
            let trimmed = p.trim_start_matches('/');
            let pat = Pattern::new(trimmed).map_err(|e| format!("pattern {p:?}: {e}"))?;
            if p.contains('/') {
                m.by_path.push(pat);
            } else {
                m.by_name.push(pat);
            }
        }
        Ok(m)
    }

    /// Whether every name matches (no patterns).
    pub fn matches_everything(&self) -> bool {
        self.by_name.is_empty() && self.by_path.is_empty()
    }

    /// Whether a catalogue name (`/a/b.jpg`) matches.
    pub fn matches(&self, name: &[u8]) -> bool {
        if self.by_name.is_empty() && self.by_path.is_empty() {
            return true;
        }
        let text = String::from_utf8_lossy(name);
        let rel = text.strip_prefix('/').unwrap_or(&text);
        let base = rel.rsplit('/').next().unwrap_or(rel);
        self.by_name
            .iter()
            .any(|p| p.matches_with(base, self.options))
            || self
                .by_path
                .iter()
                .any(|p| p.matches_with(rel, self.options))
    }

    /// A SQLite pattern that every matching name also meets, letting
    /// SQLite skip most rows. `None` when no single prefilter helps.
    ///
    /// The rule: the prefilter never excludes a name the matcher accepts.
    /// SQLite's GLOB reads classes differently (`[^..]` negates, `[!..]`
    /// does not), so every class becomes "any one character"; `*` and `?`
    /// cross `/` in SQLite, so the prefilter is a superset. Names whose
    /// characters SQLite could count differently from us (not text, not
    /// starting with `/`, NUL, anything but printable ASCII) are never
    /// filtered: see [`crate::catalog::manifest::prefilter_condition`].
    /// Case-insensitive matching folds ASCII letters only, as SQLite's
    /// LIKE does.
    pub fn sql_prefilter(&self) -> Option<Prefilter> {
        if self.sources.len() != 1 {
            return None;
        }
        let p = &self.sources[0];
        let by_path = p.contains('/');
        let like = !self.options.case_sensitive;
        // A name pattern matches the last part of the name, which any
        // characters may precede; a path pattern the whole name after its `/`.
        let mut out = String::from(match (by_path, like) {
            (true, _) => "/",
            (false, false) => "*",
            (false, true) => "%",
        });
        for t in tokens(p.trim_start_matches('/')) {
            match (t, like) {
                (Tok::Many, false) => out.push('*'),
                (Tok::Many, true) => out.push('%'),
                (Tok::One, false) => out.push('?'),
                (Tok::One, true) => out.push('_'),
                (Tok::Lit(c @ ('*' | '?' | '[')), false) => {
                    out.push('[');
                    out.push(c);
                    out.push(']');
                }
                (Tok::Lit(c @ ('%' | '_' | '\\')), true) => {
                    out.push('\\');
                    out.push(c);
                }
                (Tok::Lit(c), _) => out.push(c),
            }
        }
        Some(Prefilter { like, pattern: out })
    }
}

/// A compiled pattern's meaning as far as a prefilter needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    /// One character, itself.
    Lit(char),
    /// Any one character (`?`, or a class).
    One,
    /// Any characters (`*`, or `**` with the `/` after it).
    Many,
}

/// Splits a pattern the way the `glob` crate does (`Pattern::new` already
/// accepted it): a class is `[` (or `[!`), at least one character, and the
/// next `]`; `**` takes the `/` after it, which it may match as nothing.
fn tokens(p: &str) -> Vec<Tok> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    // Bounded: every arm moves `i` forward by at least one.
    while i < chars.len() {
        match chars[i] {
            '?' => {
                out.push(Tok::One);
                i += 1;
            }
            '*' => {
                let start = i;
                while i < chars.len() && chars[i] == '*' {
                    i += 1;
                }
                if i - start >= 2 && chars.get(i) == Some(&'/') {
                    i += 1;
                }
                out.push(Tok::Many);
            }
            '[' => {
                let from = if chars.get(i + 1) == Some(&'!') {
                    i + 3
                } else {
                    i + 2
                };
                match chars
                    .get(from..)
                    .and_then(|rest| rest.iter().position(|&c| c == ']'))
                {
                    Some(j) => {
                        out.push(Tok::One);
                        i = from + j + 1;
                    }
                    // `Pattern::new` refuses an unclosed class; were one to
                    // get here, the rest matches anything.
                    None => {
                        out.push(Tok::Many);
                        break;
                    }
                }
            }
            c => {
                out.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    out
}

/// A superset filter SQLite applies before we match exactly: a GLOB
/// pattern, or (for case-insensitive matching) a LIKE pattern with `\` as
/// its escape character.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefilter {
    pub like: bool,
    pub pattern: String,
}

/// One file as of the chosen time.
#[derive(Debug, Clone)]
pub struct FileState {
    pub name: Vec<u8>,
    /// Its versions up to the time, oldest first; the last is current.
    pub versions: Vec<Version>,
    /// When it was recorded deleted, if it was deleted by then (after its
    /// current version).
    pub deleted: Option<f64>,
}

impl FileState {
    /// The version current at the chosen time.
    pub fn current(&self) -> &Version {
        // `select` never builds a state without versions.
        &self.versions[self.versions.len() - 1]
    }

    /// The name for display.
    pub fn display(&self, escape: bool) -> String {
        names::display(&self.name, escape)
    }
}

/// The chosen files, in name order, and how many manifest rows were invalid.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub files: Vec<FileState>,
    pub invalid_rows: u64,
}

/// Every file matching `matcher` with at least one version at or before
/// `as_of` (all versions when `None`), with its deletion state then.
pub fn select(
    manifest: &Manifest,
    matcher: &Matcher,
    as_of: Option<f64>,
) -> Result<Selection, ManifestError> {
    let mut files: Vec<FileState> = Vec::new();
    let invalid = for_each_file(manifest, matcher, as_of, &mut |f| files.push(f))?;
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Selection {
        files,
        invalid_rows: invalid,
    })
}

/// Like [`select`], one file at a time and holding only that one: the
/// files come in the manifest's order (by name as SQLite compares it, so
/// not always byte order), and a name stored both as text and as a blob
/// comes twice. Returns how many manifest rows were invalid.
pub fn for_each_file(
    manifest: &Manifest,
    matcher: &Matcher,
    as_of: Option<f64>,
    f: &mut dyn FnMut(FileState),
) -> Result<u64, ManifestError> {
    let limit = as_of.unwrap_or(f64::INFINITY);
    let mut deletions: std::collections::HashMap<Vec<u8>, Vec<(f64, Option<i64>)>> =
        std::collections::HashMap::new();
    for d in manifest.deletions()? {
        if d.deleted <= limit && matcher.matches(&d.name) {
            deletions
                .entry(d.name)
                .or_default()
                .push((d.deleted, d.file_id));
        }
    }
    let finish = |mut file: FileState| {
        let current = file.current();
        let (cur_id, cur_time) = (current.id, current.timestamp);
        if let Some(ds) = deletions.get(&file.name) {
            file.deleted = ds
                .iter()
                .filter(|(when, file_id)| match file_id {
                    Some(id) => *id == cur_id,
                    None => *when >= cur_time,
                })
                .map(|(when, _)| *when)
                .fold(None, |acc: Option<f64>, w| {
                    Some(acc.map_or(w, |a| a.max(w)))
                });
        }
        file
    };
    let mut open: Option<FileState> = None;
    let prefilter = matcher.sql_prefilter();
    let invalid = manifest.for_each_version_by_name(prefilter.as_ref(), &mut |v| {
        if v.timestamp > limit || !matcher.matches(&v.name) {
            return;
        }
        match &mut open {
            Some(file) if file.name == v.name => file.versions.push(v),
            _ => {
                let next = FileState {
                    name: v.name.clone(),
                    versions: vec![v],
                    deleted: None,
                };
                if let Some(done) = open.replace(next) {
                    f(finish(done));
                }
            }
        }
    })?;
    if let Some(done) = open {
        f(finish(done));
    }
    Ok(invalid)
}

/// What held a name of the `entries` table at the chosen time.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryAt {
    /// The row holding it (not deleted by then).
    Held(Entry),
    /// Its latest row by then was recorded deleted by then.
    Deleted(Entry),
}

/// Every name of `entries` matching `matcher` with a row at or before
/// `as_of` (every row when `None`): the row with the latest `timestamp`
/// by then (the higher id between equal ones) holds the name unless it
/// was recorded deleted by then. The names come in the manifest's order,
/// each once per spelling (text or blob), holding one row at a time.
/// Returns how many rows were invalid.
pub fn for_each_entry(
    tree: &Tree<'_>,
    matcher: &Matcher,
    as_of: Option<f64>,
    f: &mut dyn FnMut(EntryAt),
) -> Result<u64, ManifestError> {
    let limit = as_of.unwrap_or(f64::INFINITY);
    let settle = |e: Entry| match e.deleted {
        Some(when) if when <= limit => EntryAt::Deleted(e),
        _ => EntryAt::Held(e),
    };
    let mut open: Option<Entry> = None;
    let invalid = tree.for_each_entry(&mut |e| {
        if e.timestamp > limit || !matcher.matches(&e.name) {
            return;
        }
        match &mut open {
            Some(best) if best.name == e.name => {
                if (e.timestamp, e.id) > (best.timestamp, best.id) {
                    *best = e;
                }
            }
            _ => {
                if let Some(done) = open.replace(e) {
                    f(settle(done));
                }
            }
        }
    })?;
    if let Some(done) = open {
        f(settle(done));
    }
    Ok(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &[&str], ci: bool) -> Matcher {
        Matcher::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>(), ci).unwrap()
    }

    #[test]
    fn patterns() {
        assert!(m(&["**/*.jpg"], false).matches(b"/2012/holiday/a.jpg"));
        assert!(m(&["**/*.jpg"], false).matches(b"/a.jpg"));
        assert!(!m(&["**/*.jpg"], false).matches(b"/a.JPG"));
        assert!(m(&["**/*.jpg"], true).matches(b"/a.JPG"));
        assert!(m(&["2012/**"], false).matches(b"/2012/holiday/a.jpg"));
        assert!(!m(&["2012/**"], false).matches(b"/2013/a.jpg"));
        assert!(m(&["IMG_0001*"], false).matches(b"/2012/holiday/IMG_0001.jpg"));
        assert!(!m(&["holiday"], false).matches(b"/2012/holiday/IMG_0001.jpg"));
        assert!(m(&["/2012/*/IMG*"], false).matches(b"/2012/holiday/IMG_0001.jpg"));
        assert!(!m(&["2012/*.jpg"], false).matches(b"/2012/holiday/a.jpg"));
        assert!(m(&[], false).matches(b"/anything"));
        assert!(m(&["caf*"], false).matches(b"/x/caf\xe9"));
    }

    fn pre(p: &str, ci: bool) -> Option<String> {
        m(&[p], ci).sql_prefilter().map(|f| f.pattern)
    }

    #[test]
    fn prefilter_is_a_superset() {
        assert_eq!(pre("2012/**", false).as_deref(), Some("/2012/*"));
        assert_eq!(pre("*.jpg", false).as_deref(), Some("**.jpg"));
        assert_eq!(pre("**/*.jpg", false).as_deref(), Some("/**.jpg"));
        assert_eq!(pre("a/**/b", false).as_deref(), Some("/a/*b"));
        assert_eq!(pre("*.jpg", true).as_deref(), Some("%%.jpg"));
        assert_eq!(
            pre("IMG_[0-9]?.jpg", true).as_deref(),
            Some(r"%IMG\___.jpg")
        );
        assert_eq!(pre("100%", true).as_deref(), Some(r"%100\%"));
        assert_eq!(pre("café*", true).as_deref(), Some("%café%"));
        // Classes of either spelling are one character: SQLite reads `[!`
        // as a class holding `!`, the glob crate as a negation.
        assert_eq!(pre("[!a]*.txt", false).as_deref(), Some("*?*.txt"));
        assert_eq!(pre("[]x]-[!]y]", false).as_deref(), Some("*?-?"));
        assert!(m(&["*.jpg"], true).sql_prefilter().unwrap().like);
        assert!(!m(&["*.jpg"], false).sql_prefilter().unwrap().like);
    }

    /// Whether the SQL prefilter lets `name` through, stored as a blob or
    /// as text of exactly its bytes (valid UTF-8 or not).
    fn passes(conn: &rusqlite::Connection, p: &Prefilter, name: &[u8], as_text: bool) -> bool {
        let value = if as_text { "CAST(?2 AS TEXT)" } else { "?2" };
        let sql = format!(
            "SELECT count(*) FROM (SELECT {value} AS filename) WHERE {}",
            crate::catalog::manifest::prefilter_condition(p)
        );
        conn.query_row(&sql, rusqlite::params![p.pattern, name], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
            == 1
    }

    #[test]
    fn negated_classes_pass_the_prefilter() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::catalog::manifest::register_functions(&conn).unwrap();
        for (pat, ci) in [("[!b]*.txt", false), ("[!b]*.txt", true)] {
            let matcher = m(&[pat], ci);
            assert!(matcher.matches(b"/a/notes.txt"));
            let p = matcher.sql_prefilter().unwrap();
            assert!(
                passes(&conn, &p, b"/a/notes.txt", true),
                "{pat} ci={ci}: {p:?}"
            );
        }
    }

    use proptest::prelude::*;

    /// Pieces of names: case pairs, separators, every character SQLite or
    /// the glob crate treats specially, non-ASCII text, and bytes that are
    /// not UTF-8.
    const PIECES: &[&[u8]] = &[
        b"a",
        b"A",
        b"b",
        b"B",
        b"z",
        b"0",
        b"9",
        b"/",
        b".",
        b"-",
        b"]",
        b"[",
        b"!",
        b"^",
        b"*",
        b"?",
        b"%",
        b"_",
        b"\\",
        b" ",
        b"\n",
        b"\x1b",
        b"\x7f",
        b"\0",
        "é".as_bytes(),
        "É".as_bytes(),
        "K".as_bytes(),
        b"\xe9",
        b"\xc0\x80",
        b"\xed\xa0\x80",
        b"\x80",
    ];

    fn name() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(PIECES), 0..8).prop_map(|ps| {
            let mut n = b"/".to_vec();
            for p in ps {
                n.extend_from_slice(p);
            }
            n
        })
    }

    /// Pattern pieces: literals, wildcards, classes of both spellings,
    /// ranges, `]` and `-` inside classes, bracket escapes.
    const PATTERN_PIECES: &[&str] = &[
        "a", "A", "b", "B", "z", "0", "/", ".", "-", "]", "!", "^", "%", "_", "\\", "é", "K", "?",
        "*", "**/", "**", "[!a]", "[^a]", "[a-c]", "[!a-c]", "[A-Z]", "[]a]", "[!]a]", "[a-]",
        "[-a]", "[*]", "[?]", "[[]", "[!/]", "[é]", "[!é]", "[%_]", "[\\]", "[^]", "[!!]",
    ];

    /// A pattern made of random pieces, or one made from a name by turning
    /// some of its characters into wildcards or classes holding them (so
    /// that many patterns match).
    fn pattern_for(name: &[u8], picks: &[(u8, usize)], lead: bool) -> String {
        let text = String::from_utf8_lossy(name);
        let mut out = String::new();
        if lead {
            out.push('/');
        }
        for (i, c) in text.trim_start_matches('/').chars().enumerate() {
            let (how, piece) = picks.get(i).copied().unwrap_or((0, 0));
            match how % 8 {
                0 | 1 => match c {
                    '*' | '?' | '[' | ']' => out.push_str(&format!("[{c}]")),
                    c => out.push(c),
                },
                2 => out.push('?'),
                3 => out.push('*'),
                4 => out.push_str(&format!("[{c}x]")),
                5 => out.push_str(&format!("[!{}]", if c == 'q' { 'r' } else { 'q' })),
                6 => out.push_str(PATTERN_PIECES[piece % PATTERN_PIECES.len()]),
                _ => out.push_str(&c.to_uppercase().to_string()),
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The prefilter never excludes a name that the matcher accepts,
        /// with and without `-i`, whether the name is stored as text
        /// (even text that is not UTF-8, as a hostile disc may hold) or
        /// as a blob.
        #[test]
        fn prefilter_never_excludes_a_match(
            n in name(),
            random in prop::collection::vec(prop::sample::select(PATTERN_PIECES), 1..6),
            picks in prop::collection::vec((any::<u8>(), any::<usize>()), 0..8),
            from_name in any::<bool>(),
            lead in any::<bool>(),
            ci in any::<bool>(),
            as_blob in any::<bool>(),
        ) {
            let pattern = if from_name {
                pattern_for(&n, &picks, lead)
            } else {
                let mut p = if lead { "/".to_string() } else { String::new() };
                p.push_str(&random.concat());
                p
            };
            let Ok(matcher) = Matcher::new(std::slice::from_ref(&pattern), ci) else {
                return Ok(());
            };
            let Some(p) = matcher.sql_prefilter() else {
                return Ok(());
            };
            let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::catalog::manifest::register_functions(&conn).unwrap();
            if matcher.matches(&n) {
                prop_assert!(
                    passes(&conn, &p, &n, !as_blob),
                    "{pattern:?} (ci={ci}) matches {:?} but {p:?} excludes it",
                    String::from_utf8_lossy(&n)
                );
            }
        }
    }
}

//! What a set held at a given time, from a manifest: for each file chosen
//! by glob patterns, its versions up to that time, the one current then,
//! and whether it had been deleted by then. Shared by find and restore.

use glob::{MatchOptions, Pattern};

use crate::catalog::manifest::{Manifest, ManifestError, Version};
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

    /// A SQLite condition that every matching name also meets (SQLite's `*`
    /// and `%` cross `/`, so it is a superset), letting SQLite skip most
    /// rows. `None` when no single prefilter helps.
    pub fn sql_prefilter(&self) -> Option<Prefilter> {
        if self.sources.len() != 1 {
            return None;
        }
        let p = &self.sources[0];
        // `**/` may match nothing at all: it becomes a bare `*`.
        let body = p
            .trim_start_matches('/')
            .replace("**/", "*")
            .replace("**", "*");
        let glob = if p.contains('/') {
            format!("/{body}")
        } else {
            format!("*/{body}")
        };
        if self.options.case_sensitive {
            return Some(Prefilter {
                like: false,
                pattern: glob,
            });
        }
        // SQLite's LIKE folds ASCII case only: a pattern with other letters
        // could miss a match, so it gets no prefilter.
        if !glob.is_ascii() {
            return None;
        }
        let mut like = String::new();
        let mut chars = glob.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => like.push('%'),
                '?' => like.push('_'),
                '[' => {
                    // A class matches exactly one character.
                    if chars.peek() == Some(&'!') {
                        chars.next();
                    }
                    if chars.peek() == Some(&']') {
                        chars.next();
                    }
                    for c in chars.by_ref() {
                        if c == ']' {
                            break;
                        }
                    }
                    like.push('_');
                }
                '%' | '_' | '\\' => {
                    like.push('\\');
                    like.push(c);
                }
                c => like.push(c),
            }
        }
        Some(Prefilter {
            like: true,
            pattern: like,
        })
    }
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
        assert_eq!(pre("*.jpg", false).as_deref(), Some("*/*.jpg"));
        assert_eq!(pre("**/*.jpg", false).as_deref(), Some("/*.jpg"));
        assert_eq!(pre("a/**/b", false).as_deref(), Some("/a/*b"));
        assert_eq!(pre("*.jpg", true).as_deref(), Some("%/%.jpg"));
        assert_eq!(
            pre("IMG_[0-9]?.jpg", true).as_deref(),
            Some(r"%/IMG\___.jpg")
        );
        assert_eq!(pre("100%", true).as_deref(), Some(r"%/100\%"));
        assert_eq!(pre("café*", true), None);
        assert!(m(&["*.jpg"], true).sql_prefilter().unwrap().like);
        assert!(!m(&["*.jpg"], false).sql_prefilter().unwrap().like);
    }
}

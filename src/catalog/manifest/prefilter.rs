//! The name prefilter of a find or a restore: SQL functions that let
//! SQLite skip, in one call per row, the names a pattern cannot match.
//!
//! Our own and not SQLite's GLOB and LIKE: those take three more checks per
//! row to keep names whose characters SQLite counts differently from us,
//! and at 5,000,000 rows the checks took more time than the scan. Patterns
//! are the few forms [`crate::history::Prefilter`] writes, matched byte by
//! byte on plain names only, so no crate for globs fits better.

use rusqlite::Connection;

/// The SQL functions [`prefilter_condition`] calls, for a GLOB and for a
/// LIKE prefilter pattern: `f(filename, pattern)`.
const PREFILTER_FNS: [(&str, bool); 2] = [("dbackup_glob", false), ("dbackup_like", true)];

/// Adds the prefilter functions to `conn`: 1 when `filename` is not a plain
/// name (text that starts with `/` and holds printable ASCII alone, no NUL:
/// the names whose characters SQLite and we count alike), or when it is and
/// the pattern matches it; 0 otherwise. One call per row, in Rust, where
/// the same in SQL (`typeof`, `instr`, a GLOB for the characters, then the
/// GLOB or LIKE) cost about half of a find's time at 5,000,000 rows. Our
/// own queries only may call them, never a manifest's schema
/// (`SQLITE_DIRECTONLY`).
///
/// Registered through SQLite's C interface, not rusqlite's closures: at
/// millions of calls, a closure's per-call wrapping (its context, the
/// value's conversion, the result's) cost as much as the match itself.
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::ffi;
    for (name, like) in PREFILTER_FNS {
        let cname = std::ffi::CString::new(name).expect("no NUL in our names");
        let func: unsafe extern "C" fn(_, _, _) = if like {
            prefilter_call::<true>
        } else {
            prefilter_call::<false>
        };
        // SAFETY: the handle is the open connection's, alive for the call;
        // the name is NUL-terminated and copied by SQLite; the function
        // takes no user data and has no destructor of its own.
        let rc = unsafe {
            ffi::sqlite3_create_function_v2(
                conn.handle(),
                cname.as_ptr(),
                2,
                ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC | ffi::SQLITE_DIRECTONLY,
                std::ptr::null_mut(),
                Some(func),
                None,
                None,
                None,
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None));
        }
    }
    Ok(())
}

/// The bytes of a TEXT value in UTF-8 (converted by SQLite from a UTF-16
/// database's own encoding), or of a BLOB as they are; `None` for any
/// other type.
///
/// # Safety
/// `v` is a value SQLite passed to the function now running; the slice
/// lives no longer than that call.
unsafe fn value_bytes<'a>(v: *mut rusqlite::ffi::sqlite3_value) -> Option<&'a [u8]> {
    use rusqlite::ffi;
    // SAFETY (for the block): `v` is valid for this call; the pointer
    // comes before its length, as SQLite asks, and holds that many bytes.
    unsafe {
        let p = match ffi::sqlite3_value_type(v) {
            ffi::SQLITE_TEXT => ffi::sqlite3_value_text(v),
            ffi::SQLITE_BLOB => ffi::sqlite3_value_blob(v).cast::<u8>(),
            _ => return None,
        };
        let n = usize::try_from(ffi::sqlite3_value_bytes(v)).unwrap_or(0);
        Some(if p.is_null() || n == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(p, n)
        })
    }
}

/// `dbackup_glob(filename, pattern)` (`LIKE` false) or `dbackup_like`: see
/// [`register_functions`]. The pattern, read once per statement, is kept
/// as the call's auxiliary data, which SQLite frees.
unsafe extern "C" fn prefilter_call<const LIKE: bool>(
    ctx: *mut rusqlite::ffi::sqlite3_context,
    argc: std::os::raw::c_int,
    argv: *mut *mut rusqlite::ffi::sqlite3_value,
) {
    use rusqlite::ffi;
    unsafe extern "C" fn free_pattern(p: *mut std::os::raw::c_void) {
        // SAFETY: `p` is the box made below, given to SQLite once.
        drop(unsafe { Box::from_raw(p.cast::<PlainPattern>()) });
    }
    // SAFETY (for the block): SQLite passes `argc` valid values in `argv`
    // and a valid context for the duration of the call; the auxiliary
    // pointer is either null or the box we set.
    unsafe {
        if argc != 2 || argv.is_null() {
            ffi::sqlite3_result_int(ctx, 1);
            return;
        }
        let args = std::slice::from_raw_parts(argv, 2);
        let pass = |pattern: &PlainPattern| {
            ffi::sqlite3_value_type(args[0]) != ffi::SQLITE_TEXT
                || value_bytes(args[0]).is_none_or(|t| !is_plain_name(t) || pattern.matches(t))
        };
        let kept = ffi::sqlite3_get_auxdata(ctx, 1).cast::<PlainPattern>();
        let ok = if kept.is_null() {
            // A pattern that is not text lets every name through.
            let Some(p) = value_bytes(args[1]) else {
                ffi::sqlite3_result_int(ctx, 1);
                return;
            };
            let pattern = PlainPattern::new(p, LIKE);
            let ok = pass(&pattern);
            // SQLite may free it at once (then it is read again next row).
            let boxed = Box::into_raw(Box::new(pattern));
            ffi::sqlite3_set_auxdata(ctx, 1, boxed.cast(), Some(free_pattern));
            ok
        } else {
            pass(&*kept)
        };
        ffi::sqlite3_result_int(ctx, ok.into());
    }
}

fn is_plain_name(t: &[u8]) -> bool {
    // Every byte looked at, without an early exit, so that the compiler
    // checks many at a time.
    t.first() == Some(&b'/')
        && t.iter()
            .fold(true, |all, &b| all & (b.wrapping_sub(b' ') <= b'~' - b' '))
}

/// A prefilter pattern ([`crate::history::Prefilter`]: GLOB's `*`, `?` and
/// `[c]`, or LIKE's `%`, `_` and `\c`, folding ASCII letters) read for
/// plain names, whose characters are bytes. A character outside printable
/// ASCII matches no byte of one.
struct PlainPattern {
    toks: Vec<PlainTok>,
    tail: usize,
    fold: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum PlainTok {
    Lit(u8),
    One,
    Many,
    Never,
}

impl PlainPattern {
    fn new(p: &[u8], like: bool) -> PlainPattern {
        let text = String::from_utf8_lossy(p);
        let mut chars = text.chars();
        let lit = |c: char| match u8::try_from(c) {
            Ok(b) if (b' '..=b'~').contains(&b) => PlainTok::Lit(b),
            _ => PlainTok::Never,
        };
        let mut toks = Vec::new();
        // Bounded by the pattern: every turn takes a character or more.
        while let Some(c) = chars.next() {
            let t = match (c, like) {
                ('%', true) | ('*', false) => PlainTok::Many,
                ('_', true) | ('?', false) => PlainTok::One,
                ('\\', true) => chars.next().map_or(PlainTok::Never, lit),
                ('[', false) => {
                    // Our patterns hold `[c]` for a literal `c` alone; a
                    // longer class matches any one character (a superset).
                    let rest: String = chars.clone().take_while(|&c| c != ']').collect();
                    let n = rest.chars().count();
                    if chars.clone().nth(n) != Some(']') {
                        PlainTok::Never
                    } else {
                        chars.nth(n);
                        let mut inner = rest.chars();
                        match (inner.next(), inner.next()) {
                            (Some(c), None) => lit(c),
                            _ => PlainTok::One,
                        }
                    }
                }
                (c, _) => lit(c),
            };
            if !(t == PlainTok::Many && toks.last() == Some(&PlainTok::Many)) {
                toks.push(t);
            }
        }
        // Where the tokens after the last `*` start (all of them if none).
        let tail = toks
            .iter()
            .rposition(|t| *t == PlainTok::Many)
            .map_or(0, |i| i + 1);
        PlainPattern {
            toks,
            tail,
            fold: like,
        }
    }

    /// Whether the pattern matches `s` whole. What follows the last `*`
    /// has a fixed length and must match the end of `s`: checked first, it
    /// turns most names down in a few bytes. Then the usual wildcard walk,
    /// which goes back only to the last `*` (linear in `s` per `*`).
    fn matches(&self, s: &[u8]) -> bool {
        let eq = |a: u8, b: u8| a == b || (self.fold && a.eq_ignore_ascii_case(&b));
        let tail = &self.toks[self.tail..];
        if tail.len() > s.len()
            || !tail
                .iter()
                .zip(&s[s.len() - tail.len()..])
                .all(|(t, &b)| match *t {
                    PlainTok::Lit(c) => eq(c, b),
                    PlainTok::One => true,
                    _ => false,
                })
        {
            return false;
        }
        let p = &self.toks;
        let (mut pi, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        // Bounded: each turn moves `si` forward, or moves `pi` forward, or
        // goes back to the last `*` with its start one byte further on.
        while si < s.len() {
            match p.get(pi) {
                Some(PlainTok::Many) => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                Some(PlainTok::One) => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                Some(&PlainTok::Lit(c)) if eq(c, s[si]) => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            }
        }
        p[pi..].iter().all(|t| *t == PlainTok::Many)
    }
}

/// The SQL condition on `filename` that a [`crate::history::Prefilter`]
/// (bound as `?1`) becomes, on a connection with [`register_functions`].
/// SQLite counts the characters of a name that is not valid UTF-8 (or
/// holds a NUL) its own way, so only plain names are filtered; every other
/// name passes, and the exact matcher decides.
pub fn prefilter_condition(p: &crate::history::Prefilter) -> String {
    let name = PREFILTER_FNS[usize::from(p.like)].0;
    format!("{name}(filename, ?1)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A pattern as [`crate::history::Prefilter`] writes them: its tokens
    /// spelt for GLOB or for LIKE.
    fn spell(toks: &[(u8, char)], like: bool) -> String {
        let mut out = String::new();
        for &(kind, c) in toks {
            match (kind % 3, like) {
                (0, false) => out.push('*'),
                (0, true) => out.push('%'),
                (1, false) => out.push('?'),
                (1, true) => out.push('_'),
                (_, false) if "*?[".contains(c) => out.extend(['[', c, ']']),
                (_, true) if "%_\\".contains(c) => out.extend(['\\', c]),
                (_, _) => out.push(c),
            }
        }
        out
    }

    fn sqlite_says(conn: &Connection, name: &str, pattern: &str, like: bool) -> bool {
        let sql = if like {
            "SELECT ?1 LIKE ?2 ESCAPE '\\'"
        } else {
            "SELECT ?1 GLOB ?2"
        };
        conn.query_row(sql, [name, pattern], |r| r.get(0)).unwrap()
    }

    fn ours(conn: &Connection, name: &[u8], pattern: &str, like: bool, as_text: bool) -> bool {
        let value = if as_text { "CAST(?1 AS TEXT)" } else { "?1" };
        let sql = format!(
            "SELECT count(*) FROM (SELECT {value} AS filename) WHERE {}",
            prefilter_condition(&crate::history::Prefilter {
                like,
                pattern: pattern.into(),
            })
            .replace("?1", "?2")
        );
        conn.query_row(&sql, rusqlite::params![name, pattern], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
            == 1
    }

    /// In a UTF-16 database the names and the pattern are matched as
    /// UTF-8, as SQLite converts them: a name whose UTF-16 bytes look like
    /// a plain name is not taken for one.
    #[test]
    fn a_utf16_database_is_matched_in_utf8() {
        for enc in ["UTF-16le", "UTF-16be"] {
            let conn = Connection::open_in_memory().unwrap();
            conn.execute_batch(&format!("PRAGMA encoding='{enc}'; CREATE TABLE t(x)"))
                .unwrap();
            register_functions(&conn).unwrap();
            let pass = |name: &str, pattern: &str, like: bool| -> bool {
                let f = PREFILTER_FNS[usize::from(like)].0;
                conn.query_row(&format!("SELECT {f}(?1, ?2)"), [name, pattern], |r| {
                    r.get::<_, i64>(0)
                })
                .unwrap()
                    == 1
            };
            // U+4E2F U+4E2D: `/N-N` in UTF-16LE.
            assert!(pass("\u{4e2f}\u{4e2d}", "*\u{4e2d}", false), "{enc}");
            assert!(pass("\u{4e2f}\u{4e2d}", "%\u{4e2d}", true), "{enc}");
            assert!(pass("/photos/abc.jpg", "*c.jpg", false), "{enc}");
            assert!(!pass("/photos/abd.jpg", "*c.jpg", false), "{enc}");
            assert!(pass("/photos/ABC.jpg", "%c.jpg", true), "{enc}");
        }
    }

    /// A pattern that is not text lets every name through, never none.
    #[test]
    fn a_pattern_that_is_not_text_passes_every_name() {
        let conn = Connection::open_in_memory().unwrap();
        register_functions(&conn).unwrap();
        for pattern in ["NULL", "5", "2.5"] {
            for f in ["dbackup_glob", "dbackup_like"] {
                let got: i64 = conn
                    .query_row(&format!("SELECT {f}('/abc', {pattern})"), [], |r| r.get(0))
                    .unwrap();
                assert_eq!(got, 1, "{f} {pattern}");
            }
        }
    }

    const CHARS: &str = "aAbB/._-*?[]%\\ ~é";
    const PLAIN: &[u8] = b"aAbB/._-*?[]%\\ ~";

    proptest! {
        /// On a plain name, our match is SQLite's GLOB's and LIKE's. The
        /// name is mostly one the pattern could match (its tokens filled
        /// in, letters in either case), then maybe changed in one place.
        #[test]
        fn plain_names_match_as_sqlite_matches(
            toks in prop::collection::vec((0u8..6, prop::sample::select(CHARS.chars().collect::<Vec<_>>())), 0..8),
            fill in prop::collection::vec(prop::sample::select(PLAIN.to_vec()), 0..24),
            change in prop::option::of((any::<prop::sample::Index>(), prop::sample::select(PLAIN.to_vec()))),
            like in any::<bool>(),
        ) {
            let conn = Connection::open_in_memory().unwrap();
            register_functions(&conn).unwrap();
            let pattern = spell(&toks, like);
            let mut fill = fill.into_iter().cycle();
            let mut full = b"/".to_vec();
            for &(kind, c) in &toks {
                let mut next = || fill.next().unwrap_or(b'a');
                match kind % 3 {
                    0 => {
                        let n = next() % 3;
                        for _ in 0..n {
                            full.push(next());
                        }
                    }
                    1 => full.push(next()),
                    _ if c.is_ascii() && next() % 2 == 0 => full.push((c as u8).to_ascii_uppercase()),
                    _ if c.is_ascii() => full.push(c as u8),
                    _ => full.push(next()),
                }
            }
            // The leading `/` stays: without it the name is not plain.
            if let Some((at, b)) = change.filter(|_| full.len() > 1) {
                let i = 1 + at.index(full.len() - 1);
                full[i] = b;
            }
            let text = String::from_utf8(full.clone()).unwrap();
            prop_assert_eq!(
                ours(&conn, &full, &pattern, like, true),
                sqlite_says(&conn, &text, &pattern, like),
                "{:?} on {:?} (like={})", pattern, text, like
            );
        }

        /// Any other name (a blob, not from `/`, not printable ASCII, with a
        /// NUL) always passes: the exact matcher decides.
        #[test]
        fn other_names_always_pass(
            name in prop::collection::vec(any::<u8>(), 0..12),
            as_text in any::<bool>(),
            like in any::<bool>(),
        ) {
            let plain = as_text && is_plain_name(&name);
            prop_assume!(!plain);
            let conn = Connection::open_in_memory().unwrap();
            register_functions(&conn).unwrap();
            prop_assert!(ours(&conn, &name, "zzz", like, as_text));
        }
    }

    #[test]
    fn a_schema_cannot_call_them() {
        let conn = Connection::open_in_memory().unwrap();
        register_functions(&conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE t(x); CREATE VIEW v AS SELECT dbackup_glob(x, 'a') FROM t;",
        )
        .unwrap();
        assert!(conn
            .query_row("SELECT count(*) FROM v", [], |r| r.get::<_, i64>(0))
            .is_err());
    }
}

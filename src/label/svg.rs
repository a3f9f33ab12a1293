//! The SVG backend: the same page as the PDF, in millimetres (the viewBox
//! is the A4 page), text as `<text>` with every string XML-escaped.

use std::fmt::Write;

use super::layout::{Anchor, Item, CUT_LINE, PAGE_H, PAGE_W, PT_PER_MM, QUIET_ZONE};

/// The SVG document of a page of items.
pub fn render(items: &[Item], title: &str) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail: the results are ignored below.
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{PAGE_W}mm" height="{PAGE_H}mm" viewBox="0 0 {PAGE_W} {PAGE_H}">"#
    );
    let _ = writeln!(s, "<title>{}</title>", escape(title));
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{PAGE_W}" height="{PAGE_H}" fill="#fff"/>"##
    );
    let cut = format!(r##"fill="none" stroke="#737373" stroke-width="{CUT_LINE}""##);
    for item in items {
        match item {
            Item::Text {
                x,
                y,
                size,
                bold,
                anchor,
                text,
            } => {
                let anchor = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}" font-family="Helvetica, Arial, 'Liberation Sans', sans-serif" font-size="{}" font-weight="{}" text-anchor="{anchor}" xml:space="preserve">{}</text>"#,
                    num(*x),
                    num(*y),
                    num(size / PT_PER_MM),
                    if *bold { "bold" } else { "normal" },
                    escape(text)
                );
            }
            Item::Rect { x, y, w, h } => {
                let _ = writeln!(
                    s,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" {cut}/>"#,
                    num(*x),
                    num(*y),
                    num(*w),
                    num(*h)
                );
            }
            Item::Circle { cx, cy, r } => {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{}" cy="{}" r="{}" {cut}/>"#,
                    num(*cx),
                    num(*cy),
                    num(*r)
                );
            }
            Item::Qr {
                x,
                y,
                module,
                width,
                dark,
            } => {
                let side = Item::qr_side(*module, *width);
                let _ = writeln!(
                    s,
                    r##"<g shape-rendering="crispEdges"><rect x="{}" y="{}" width="{}" height="{}" fill="#fff"/>"##,
                    num(*x),
                    num(*y),
                    num(side),
                    num(side)
                );
                for (row, col, run) in super::layout::runs(dark, *width) {
                    let _ = writeln!(
                        s,
                        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#000"/>"##,
                        num(x + module * (QUIET_ZONE + col) as f32),
                        num(y + module * (QUIET_ZONE + row) as f32),
                        num(module * run as f32),
                        num(*module)
                    );
                }
                let _ = writeln!(s, "</g>");
            }
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}

/// A coordinate with enough digits for a printer and no more.
fn num(v: f32) -> String {
    if !v.is_finite() || v.abs() < 0.0005 {
        return "0".into();
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `text` safe inside an XML element or attribute: the five markup
/// characters as entities, and characters XML 1.0 cannot hold at all
/// (control characters, U+FFFE, U+FFFF) as visible `\u{..}` escapes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.extend(c.escape_unicode())
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup_and_no_control() {
        let e = escape("<script>alert(\"x\" & 'y')</script>\n\u{1}\u{fffe}é");
        assert_eq!(
            e,
            "&lt;script&gt;alert(&quot;x&quot; &amp; &apos;y&apos;)&lt;/script&gt;\\u{a}\\u{1}\\u{fffe}é"
        );
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(105.0), "105");
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(1.0 / 3.0), "0.333");
        assert_eq!(num(-0.0001), "0");
    }
}

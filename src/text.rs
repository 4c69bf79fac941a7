//! Text a node sent back, made safe to print on a terminal.
//!
//! A node (or whoever controls its runtime, its rules or a container's labels)
//! decides what its stderr, rule lines, images and labels contain. Printed raw,
//! an escape sequence among them can clear the screen, retitle the window, hide
//! a line, or (with a bidi override) make text read differently from what it is.
//! Every text-mode sink of node-provided text goes through [`escape_controls`];
//! JSON output needs nothing (serde escapes control characters).
//! Pure: no I/O here.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for what [`escape_controls`] escapes: C0 controls except `\n` (tabs
/// included: a tab from a node could fake alignment), DEL, C1 controls, and the
/// Unicode bidi controls (the marks U+061C, U+200E, U+200F, the embeddings and
/// overrides U+202A..U+202E, the isolates U+2066..U+2069).
pub fn needs_escape(c: char) -> bool {
    matches!(c,
        '\0'..='\x09' | '\x0b'..='\x1f' | '\x7f' | '\u{80}'..='\u{9f}'
        | '\u{061c}' | '\u{200e}' | '\u{200f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every character of [`needs_escape`] written as an escape: ASCII
/// controls as `\x1b`, the others as `\u{202e}`. Borrowed (no allocation) when
/// there is nothing to escape, which is the usual case. A backslash already in
/// `s` stays as it is: the point is what the terminal does, not a reversible
/// encoding.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(needs_escape) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if c.is_ascii() {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_terminal_sequences_and_keeps_newlines() {
        assert_eq!(escape_controls("\x1b[2Jgone"), "\\x1b[2Jgone");
        assert_eq!(
            escape_controls("\x1b]0;title\x07after"),
            "\\x1b]0;title\\x07after"
        );
        assert_eq!(escape_controls("a\r\nb\tc\x7f"), "a\\x0d\nb\\x09c\\x7f");
        assert_eq!(escape_controls("csi\u{9b}2J"), "csi\\u{9b}2J");
        assert_eq!(
            escape_controls("evil\u{202e}txt.exe"),
            "evil\\u{202e}txt.exe"
        );
        assert_eq!(escape_controls("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
    }

    #[test]
    fn plain_text_is_borrowed_as_it_is() {
        for s in [
            "",
            "-A OUTPUT -d 127.0.0.1/32 -j DNAT",
            "é ü 漢字 \\x1b",
            "a\nb",
        ] {
            assert!(matches!(escape_controls(s), Cow::Borrowed(b) if b == s));
        }
    }

    proptest! {
        #[test]
        fn output_holds_no_control_but_newline(s in any::<String>()) {
            let out = escape_controls(&s);
            for c in out.chars() {
                prop_assert!(c == '\n' || !(c.is_control() || needs_escape(c)), "{c:?} in {out:?}");
            }
            // Text with nothing to escape comes back unchanged.
            if !s.chars().any(needs_escape) {
                prop_assert_eq!(&out, &s);
            }
        }

        #[test]
        fn output_bytes_hold_no_c0_or_del_but_newline(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let s = String::from_utf8_lossy(&bytes);
            let out = escape_controls(&s);
            prop_assert!(out.bytes().all(|b| b == b'\n' || (b >= 0x20 && b != 0x7f)), "{out:?}");
        }
    }
}

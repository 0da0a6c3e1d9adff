//! `-R`: reading rules from stdin the way ipvsadm 1.31's `config_stream_read()` does.
//!
//! A line is split on spaces, tabs, CRs and the newline; every word equal to `ipvsadm` is
//! dropped (so saved lines may start with it); a blank line yields no words. Two quirks are kept:
//! reaching the end of input while skipping blanks ends the restore even if that line had words,
//! and a word is at most 4096 bytes (a longer one is split). rvsadm adds one thing: a line whose
//! first word starts with `#` is a comment (ipvsadm 1.31 fails on it; its `ipvsadm-restore`
//! wrapper filters such lines out anyway).

use std::io::{self, BufRead};

/// ipvsadm's `MAX_LINE_LENGTH`: the longest word read at once.
const MAX_WORD: usize = 4096;

/// What one read produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreLine {
    /// The words of one line (possibly none), without `ipvsadm` words.
    Words(Vec<String>),
    /// The input is over.
    End,
}

const fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn peek(r: &mut dyn BufRead) -> io::Result<Option<u8>> {
    Ok(r.fill_buf()?.first().copied())
}

/// Reads the next line of a restore stream.
pub fn read_line(r: &mut dyn BufRead) -> io::Result<RestoreLine> {
    let mut words = Vec::new();
    loop {
        match peek(r)? {
            None => break,
            Some(b) if is_sep(b) => loop {
                match peek(r)? {
                    None => return Ok(RestoreLine::End),
                    Some(b'\n') => {
                        r.consume(1);
                        return Ok(RestoreLine::Words(words));
                    }
                    Some(b' ' | b'\t' | b'\r') => r.consume(1),
                    Some(_) => break,
                }
            },
            Some(_) => {
                let mut word = Vec::new();
                while word.len() < MAX_WORD {
                    match peek(r)? {
                        Some(b) if !is_sep(b) => {
                            word.push(b);
                            r.consume(1);
                        }
                        _ => break,
                    }
                }
                let newline = match peek(r)? {
                    Some(b) if is_sep(b) => {
                        r.consume(1);
                        b == b'\n'
                    }
                    _ => false,
                };
                if word != b"ipvsadm" {
                    words.push(String::from_utf8_lossy(&word).into_owned());
                }
                if newline {
                    return Ok(RestoreLine::Words(words));
                }
            }
        }
    }
    Ok(if words.is_empty() {
        RestoreLine::End
    } else {
        RestoreLine::Words(words)
    })
}

/// Whether a line is an rvsadm comment (first word starts with `#`).
pub fn is_comment(words: &[String]) -> bool {
    words.first().is_some_and(|w| w.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &str) -> Vec<Vec<String>> {
        let mut r = input.as_bytes();
        let mut out = Vec::new();
        while let RestoreLine::Words(w) = read_line(&mut r).unwrap() {
            out.push(w);
        }
        out
    }

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn splits_and_drops_ipvsadm() {
        assert_eq!(
            lines("ipvsadm -A -t 10.0.0.1:80\n\n  -C\t\r\n-a ipvsadm -r x"),
            vec![
                v(&["-A", "-t", "10.0.0.1:80"]),
                v(&[]),
                v(&["-C"]),
                v(&["-a", "-r", "x"])
            ]
        );
    }

    #[test]
    fn eof_in_blanks_ends_the_stream() {
        assert_eq!(lines("-C\n-C   "), vec![v(&["-C"])]);
        assert_eq!(lines("-C\nipvsadm"), vec![v(&["-C"])]);
        assert_eq!(lines(""), Vec::<Vec<String>>::new());
    }

    #[test]
    fn comments() {
        assert!(is_comment(&v(&["#", "x"])));
        assert!(is_comment(&v(&["#x"])));
        assert!(!is_comment(&v(&["-A", "#"])));
    }
}

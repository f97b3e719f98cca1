//! Text without an allocation per line or per word: [`Line`], a line that shares the block of
//! bytes it was received in, and [`Word`], a word kept inline when short.
//!
//! `socket_text_stream` gives Spark's `String` lines: one allocation per line, and the course's
//! `flat_map(|l| l.split_whitespace().map(str::to_owned))` adds one per word, which is most of
//! a word count's time. [`StreamingContext::socket_lines`](crate::StreamingContext::socket_lines)
//! gives [`Line`]s instead (slices of one buffer per socket read), and [`Line::words`] gives
//! [`Word`]s, which hold up to [`Word::INLINE`] bytes without the heap: the same job, with no
//! allocation per line or word.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use crate::render::Render;

/// A line of text sharing the block it was received in: cloning it and cutting it into
/// [`Word`]s allocate nothing. Reads as a `&str` (`Deref<Target = str>`).
///
/// ```
/// use cargo_stream_runtime::text::Line;
/// let line = Line::from("to be or not");
/// assert_eq!(line.len(), 12);
/// assert!(line.starts_with("to"));
/// assert_eq!(line.words().collect::<Vec<_>>(), ["to", "be", "or", "not"]);
/// ```
#[derive(Clone)]
pub struct Line {
    block: Arc<str>,
    start: usize,
    end: usize,
}

impl Line {
    /// The line `block[start..end]`; `start..end` must lie on character boundaries.
    pub(crate) fn in_block(block: &Arc<str>, start: usize, end: usize) -> Self {
        debug_assert!(block.is_char_boundary(start) && block.is_char_boundary(end));
        Line {
            block: Arc::clone(block),
            start,
            end,
        }
    }

    /// The lines of `text` (cut at `\n`, a `\r` before it dropped, as a socket receiver cuts
    /// them), each sharing `text`: for tests and benchmarks that feed a stream as a receiver
    /// would.
    ///
    /// ```
    /// use cargo_stream_runtime::text::Line;
    /// let lines: Vec<Line> = Line::lines_of(&"a b\r\nc\n".into()).collect();
    /// assert_eq!(lines, ["a b", "c"]);
    /// ```
    pub fn lines_of(text: &Arc<str>) -> impl Iterator<Item = Line> + '_ {
        let body = text.strip_suffix('\n').unwrap_or(text);
        let mut start = 0;
        body.split('\n').map(move |l| {
            let line_start = start;
            start += l.len() + 1;
            let l = l.strip_suffix('\r').unwrap_or(l);
            Line::in_block(text, line_start, line_start + l.len())
        })
    }

    /// The line's text.
    pub fn as_str(&self) -> &str {
        &self.block[self.start..self.end]
    }

    /// The words of the line, split on Unicode whitespace as `str::split_whitespace` does,
    /// each a [`Word`] (no allocation for a word of up to [`Word::INLINE`] bytes). Takes the
    /// line by value, so that `flat_map(Line::words)` needs no collected `Vec`.
    ///
    /// ```
    /// use cargo_stream_runtime::text::Line;
    /// let words: Vec<String> = Line::from(" a\tbb  c ").words().map(String::from).collect();
    /// assert_eq!(words, ["a", "bb", "c"]);
    /// ```
    pub fn words(self) -> Words {
        Words { pos: 0, line: self }
    }
}

impl Deref for Line {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Line {
    fn from(s: &str) -> Self {
        Line::from(Arc::<str>::from(s))
    }
}

impl From<String> for Line {
    fn from(s: String) -> Self {
        Line::from(Arc::<str>::from(s))
    }
}

impl From<Arc<str>> for Line {
    fn from(block: Arc<str>) -> Self {
        let end = block.len();
        Line {
            block,
            start: 0,
            end,
        }
    }
}

impl From<Line> for String {
    fn from(l: Line) -> Self {
        l.as_str().to_owned()
    }
}

/// The words of a [`Line`], from [`Line::words`].
pub struct Words {
    line: Line,
    pos: usize,
}

/// Whether the ASCII byte `b` is Unicode whitespace (U+0009..=U+000D or U+0020), as
/// `char::is_whitespace` says.
fn ascii_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | b' ')
}

/// The index of the first byte at or after `i` in `s` whose character's whitespace-ness is
/// `space`, or `s.len()`.
fn scan(s: &str, mut i: usize, space: bool) -> usize {
    let b = s.as_bytes();
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            if ascii_space(c) != space {
                return i;
            }
            i += 1;
        } else {
            let ch = s[i..].chars().next().unwrap_or(' ');
            if ch.is_whitespace() != space {
                return i;
            }
            i += ch.len_utf8();
        }
    }
    b.len()
}

impl Iterator for Words {
    type Item = Word;

    #[inline]
    fn next(&mut self) -> Option<Word> {
        let s = self.line.as_str();
        let start = scan(s, self.pos, true);
        if start == s.len() {
            self.pos = start;
            return None;
        }
        let end = scan(s, start, false);
        self.pos = end;
        Some(Word::from(&s[start..end]))
    }
}

/// A word, or any short key: up to [`Word::INLINE`] bytes are held inline (no allocation,
/// nothing shared between threads), longer text in one shared allocation. Reads as a `&str`,
/// hashes and compares as its text, so a map keyed by `Word` can be read with a `&str`.
///
/// ```
/// use cargo_stream_runtime::text::Word;
/// let w = Word::from("spark");
/// assert_eq!(w, "spark");
/// assert_eq!(w.to_uppercase(), "SPARK");
/// assert_eq!(std::mem::size_of::<Word>(), 24);
/// ```
#[derive(Clone)]
pub struct Word(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; Word::INLINE] },
    Shared(Arc<str>),
}

impl Word {
    /// The longest word held inline, in bytes.
    pub const INLINE: usize = 22;

    /// The word's text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: `bytes[..len]` is a copy of a whole `&str` (`From<&str>` is the only
            // constructor), so it is valid UTF-8; checking it again would add a pass over
            // the word to every hash and comparison.
            Repr::Inline { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(bytes.get_unchecked(..*len as usize))
            },
            Repr::Shared(s) => s,
        }
    }
}

impl Deref for Word {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Word {
    #[inline]
    fn from(s: &str) -> Self {
        if s.len() <= Word::INLINE {
            let mut bytes = [0u8; Word::INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Word(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            Word(Repr::Shared(Arc::from(s)))
        }
    }
}

impl From<String> for Word {
    fn from(s: String) -> Self {
        Word::from(s.as_str())
    }
}

impl From<Word> for String {
    fn from(w: Word) -> Self {
        w.as_str().to_owned()
    }
}

impl Default for Word {
    fn default() -> Self {
        Word::from("")
    }
}

/// `Hash`, `Eq`, `Ord`, `Borrow<str>`, `Display`, `Debug`, serde and `Render` as the text.
macro_rules! text_traits {
    ($t:ty) => {
        impl Hash for $t {
            fn hash<H: Hasher>(&self, h: &mut H) {
                self.as_str().hash(h)
            }
        }
        impl Eq for $t {}
        impl PartialOrd for $t {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for $t {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(o.as_str())
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, o: &str) -> bool {
                self.as_str() == o
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, o: &&str) -> bool {
                self.as_str() == *o
            }
        }
        impl PartialEq<String> for $t {
            fn eq(&self, o: &String) -> bool {
                self.as_str() == o
            }
        }
        impl PartialEq<$t> for &str {
            fn eq(&self, o: &$t) -> bool {
                *self == o.as_str()
            }
        }
        impl PartialEq<$t> for String {
            fn eq(&self, o: &$t) -> bool {
                self == o.as_str()
            }
        }
        impl Borrow<str> for $t {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self.as_str(), f)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(<$t>::from(&*s))
            }
        }
        impl Render for $t {
            fn render(&self, out: &mut String) {
                out.push_str(self.as_str());
            }
        }
    };
}
text_traits!(Line);
text_traits!(Word);

impl PartialEq for Line {
    fn eq(&self, o: &Self) -> bool {
        self.as_str() == o.as_str()
    }
}

impl PartialEq for Word {
    /// Two inline words compare as their length and whole inline array (the bytes past the
    /// length are zero), a fixed-size comparison the compiler inlines: a word count compares
    /// a word per record in its combiner.
    #[inline]
    fn eq(&self, o: &Self) -> bool {
        match (&self.0, &o.0) {
            (Repr::Inline { len: a, bytes: x }, Repr::Inline { len: b, bytes: y }) => {
                a == b && x == y
            }
            _ => self.as_str() == o.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_as_split_whitespace_does() {
        for s in [
            "",
            "   ",
            "a",
            "to be  or\tnot\r\nto be",
            "\u{b}vt\u{c}ff\u{85}nel\u{a0}nbsp\u{3000}ideo end",
            "ünïcödé wörds\u{2003}em",
            "a-very-long-word-that-does-not-fit-inline and short",
        ] {
            let ours: Vec<String> = Line::from(s).words().map(String::from).collect();
            let std: Vec<&str> = s.split_whitespace().collect();
            assert_eq!(ours, std, "{s:?}");
        }
    }

    #[test]
    fn a_word_compares_hashes_and_reads_as_its_text() {
        use std::collections::HashMap;
        let long = "x".repeat(Word::INLINE + 1);
        for text in ["", "spark", &long, &"y".repeat(Word::INLINE)] {
            let w = Word::from(text);
            assert_eq!(w.as_str(), text);
            assert_eq!(w, Word::from(text.to_owned()));
            let m: HashMap<Word, u32> = HashMap::from([(w.clone(), 1)]);
            assert_eq!(m.get(text), Some(&1));
            let json = serde_json::to_string(&w).unwrap();
            assert_eq!(serde_json::from_str::<Word>(&json).unwrap(), w);
        }
        assert_eq!(format!("{:?}", Word::from("a\"b")), "\"a\\\"b\"");
        assert_eq!(("be", 2).rendered(), (Word::from("be"), 2).rendered());
    }

    #[test]
    fn a_line_in_a_block_is_its_slice() {
        let block: Arc<str> = Arc::from("one two\nthree");
        let l = Line::in_block(&block, 8, 13);
        assert_eq!(l, "three");
        assert_eq!(String::from(l.clone()), "three");
        assert_eq!(
            serde_json::from_str::<Line>(&serde_json::to_string(&l).unwrap()).unwrap(),
            l
        );
    }
}

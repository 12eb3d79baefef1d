//! Reading one streamed OpenAI-style chunk without building JSON values:
//! a one-pass walker that checks the JSON and keeps only what the metrics
//! need, and a memo of the last token chunk (see `scan_chunk`,
//! `ChunkMemo`). `sse.rs` calls it, and falls back to serde when it says no.

/// What one streamed chunk says, read by `scan_chunk`.
pub(super) struct Scanned<'a> {
    pub(super) content: bool,
    /// The string that decided `content` (quotes included), when one did.
    pub(super) content_span: Option<Span>,
    pub(super) finish_reason: Option<&'a str>,
    /// The chunk's usage: (prompt_tokens, completion_tokens).
    pub(super) usage: Option<(Option<u64>, Option<u64>)>,
}

/// Reads an OpenAI-style chunk in one pass over its JSON, building nothing:
/// the first choice's `text` (or `delta.content`), its `finish_reason`, and
/// `usage`, by the same rules as the serde structs above. The rest is
/// checked and skipped by structure (strings end at an unescaped quote,
/// brackets must match, numbers and literals as JSON writes them), so a
/// key's name inside a string is never taken for the key, and a chunk serde
/// would reject is never read as good. `None` sends the chunk to serde: an
/// `error` member, a `\u` escape or an escaped key, a repeated member,
/// usage that is not plain integers, or anything else unexpected.
pub(super) fn scan_chunk(data: &[u8]) -> Option<Scanned<'_>> {
    let mut c = Cursor { b: data, i: 0, depth: 0 };
    let mut out = Scanned { content: false, content_span: None, finish_reason: None, usage: None };
    let mut seen = Seen::default();
    c.object(|c, key| match key {
        b"choices" => {
            seen.once(0)?;
            c.choices(&mut out)
        }
        b"usage" => {
            seen.once(1)?;
            if c.null() {
                return Some(());
            }
            let (mut prompt, mut completion, mut seen) = (None, None, Seen::default());
            c.object(|c, k| {
                match k {
                    b"prompt_tokens" => (prompt, _) = (c.count()?, seen.once(0)?),
                    b"completion_tokens" => (completion, _) = (c.count()?, seen.once(1)?),
                    _ => c.skip()?,
                }
                Some(())
            })?;
            out.usage = Some((prompt, completion));
            Some(())
        }
        b"error" => None,
        _ => c.skip(),
    })?;
    c.ws();
    (c.i == data.len()).then_some(out)
}

/// Where a string lies in a chunk: from its opening quote to past its closing one.
pub(super) type Span = (usize, usize);

/// The last plain token chunk read in full (no finish reason, no usage),
/// with where its content string lay. A stream's token chunks differ only
/// in that string: a chunk with the same bytes before it and after it is
/// in the same state at both ends, so it reads the same, and only its own
/// string needs reading. The buffer is reused: no allocation per chunk.
#[derive(Default)]
pub(super) struct ChunkMemo {
    buf: Vec<u8>,
    span: Span,
}

impl ChunkMemo {
    pub(super) fn set(&mut self, data: &[u8], span: Span) {
        self.buf.clear();
        self.buf.extend_from_slice(data);
        self.span = span;
    }

    /// Whether `data` carries content, when it is the remembered chunk but
    /// for the content string; `None` otherwise.
    pub(super) fn read(&self, data: &[u8]) -> Option<bool> {
        let (a, b) = self.span;
        if self.buf.is_empty() || data.len() < a || data[..a] != self.buf[..a] {
            return None;
        }
        let mut c = Cursor { b: data, i: a, depth: 0 };
        let (text, _) = c.str_value()?;
        (data[c.i..] == self.buf[b..]).then_some(!text.is_empty())
    }
}

/// Members already read (serde rejects a repeated known member).
#[derive(Default)]
struct Seen(u8);

impl Seen {
    fn once(&mut self, bit: u8) -> Option<()> {
        let m = 1 << bit;
        (self.0 & m == 0).then(|| self.0 |= m)
    }
}

/// A position in a JSON text, for `scan_chunk`.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
    /// Nesting of skipped values (deep ones go to serde, which has its own limit).
    depth: u32,
}

const SKIP_DEPTH_MAX: u32 = 32;

/// Bytes that end a run of plain string content: the quote, the backslash,
/// and the control characters JSON refuses inside strings.
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string: its raw bytes between the quotes, and whether it has
    /// escapes. Control characters are refused, as JSON does; so is `\u`
    /// (left to serde, which checks what it encodes).
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            // Strings here are short (keys, ids, one token's text): a table
            // lookup per byte beats setting up a vector search.
            while self.b.get(self.i).is_some_and(|&c| !STRING_STOP[c as usize]) {
                self.i += 1;
            }
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some((&self.b[start..self.i - 1], escaped));
                }
                b'\\' => {
                    if !matches!(self.b.get(self.i + 1)?, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') {
                        return None;
                    }
                    escaped = true;
                    self.i += 2;
                }
                // A control character: JSON does not allow it raw.
                _ => return None,
            }
        }
    }

    /// A string whose value is read: valid UTF-8, as serde requires.
    fn str_value(&mut self) -> Option<(&'a str, bool)> {
        let (s, escaped) = self.string()?;
        Some((std::str::from_utf8(s).ok()?, escaped))
    }

    /// `null` (consumed) or not (nothing consumed).
    fn null(&mut self) -> bool {
        if self.peek() == Some(b'n') && self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return true;
        }
        false
    }

    /// An object, calling `field` at each key (with the cursor on its value,
    /// which `field` must consume).
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let (key, escaped) = self.string()?;
            if escaped {
                return None;
            }
            self.eat(b':')?;
            field(self, key)?;
            if !self.more(b'}')? {
                return Some(());
            }
        }
    }

    /// An array, calling `item` at each element (which it must consume).
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            item(self)?;
            if !self.more(b']')? {
                return Some(());
            }
        }
    }

    /// After a member or an element: a comma (`true`, more follow) or the
    /// closing bracket (`false`, consumed); anything else is not JSON.
    fn more(&mut self, close: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.i += 1;
                Some(true)
            }
            c if c == close => {
                self.i += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// A non-negative integer as JSON writes it, or `null`.
    fn count(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        self.ws();
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let digits = &self.b[start..self.i];
        // A sign, a fraction or a leading zero goes to serde.
        if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok().map(Some)
    }

    /// `choices`: every choice checked, the first one's content and finish reason kept.
    fn choices(&mut self, out: &mut Scanned<'a>) -> Option<()> {
        let mut first = true;
        self.array(|c| {
            let (content, span, finish_reason) = c.choice()?;
            if first {
                (out.content, out.content_span, out.finish_reason, first) = (content, span, finish_reason, false);
            }
            Some(())
        })
    }

    /// One choice: whether it carries content (serde's reading: `text` when
    /// present, even empty, else `delta.content`), and its finish reason.
    fn choice(&mut self) -> Option<(bool, Option<Span>, Option<&'a str>)> {
        let (mut text, mut delta, mut finish_reason, mut seen) = (None, None, None, Seen::default());
        self.object(|c, key| {
            match key {
                b"text" => (text, _) = (c.text()?, seen.once(0)?),
                b"delta" | b"message" => {
                    let d = c.delta()?;
                    if key == b"delta" {
                        (delta, _) = (d, seen.once(1)?);
                    } else {
                        seen.once(2)?;
                    }
                }
                b"finish_reason" => {
                    seen.once(3)?;
                    if !c.null() {
                        let (fr, escaped) = c.str_value()?;
                        if escaped {
                            return None;
                        }
                        finish_reason = Some(fr);
                    }
                }
                _ => c.skip()?,
            }
            Some(())
        })?;
        let (content, span) = text.or(delta).map_or((false, None), |(c, s)| (c, Some(s)));
        Some((content, span, finish_reason))
    }

    /// A `delta` (or `message`) object or `null`: whether its `content` is a
    /// non-empty string, and where (`None` when absent or null).
    fn delta(&mut self) -> Option<Option<(bool, Span)>> {
        if self.null() {
            return Some(None);
        }
        let (mut content, mut seen) = (None, Seen::default());
        self.object(|c, k| {
            match k {
                b"content" => (content, _) = (c.text()?, seen.once(0)?),
                _ => c.skip()?,
            }
            Some(())
        })?;
        Some(content)
    }

    /// A string or `null`: `Some((non-empty, where it lies))`, or `None` for null.
    fn text(&mut self) -> Option<Option<(bool, Span)>> {
        if self.null() {
            return Some(None);
        }
        let at = self.i;
        self.str_value().map(|(s, _)| Some((!s.is_empty(), (at, self.i))))
    }

    /// Skips one value of any kind, checking it is JSON.
    fn skip(&mut self) -> Option<()> {
        if self.depth >= SKIP_DEPTH_MAX {
            return None;
        }
        self.depth += 1;
        let r = self.skip_value();
        self.depth -= 1;
        r
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' => self.object(|c, _| c.skip()),
            b'[' => self.array(|c| c.skip()),
            b'n' | b't' | b'f' => {
                let lit: &[u8] = match self.b[self.i] {
                    b'n' => b"null",
                    b't' => b"true",
                    _ => b"false",
                };
                self.b[self.i..].starts_with(lit).then(|| self.i += lit.len())
            }
            _ => self.number(),
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let digits = |c: &mut Self| {
            let start = c.i;
            while c.b.get(c.i).is_some_and(u8::is_ascii_digit) {
                c.i += 1;
            }
            (c.i > start).then_some(c.i - start)
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let lead = self.b.get(self.i).copied();
        let n = digits(self)?;
        if lead == Some(b'0') && n > 1 {
            return None;
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            digits(self)?;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            digits(self)?;
        }
        Some(())
    }
}

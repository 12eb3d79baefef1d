//! A lean HTTP/1.1 client connection for the hot path: the request is
//! formatted once (as wrk does), responses are parsed with `httparse`, and the
//! body is handed over piece by piece as it arrives, with its arrival time, so
//! token timings are exact. Keep-alive is the default; one request at a time.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where requests go: host, port, and the path prefix from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// `host:port` for the Host header and for connecting.
    pub authority: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(format!(
                "'{url}': https is not supported by the load generator (inference servers on a cluster speak plain http on the internal network)"
            ));
        } else {
            return Err(format!("'{url}': expected an http:// URL"));
        };
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if auth.is_empty() {
            return Err(format!("'{url}': no host"));
        }
        // A port follows the last ':' only outside an IPv6 literal ("[::1]:8000").
        let port_sep = match auth.rfind(']') {
            Some(b) => auth[b..].rfind(':').map(|i| b + i),
            None => auth.rfind(':'),
        };
        let (host, port) = match port_sep {
            Some(i) => {
                let p = &auth[i + 1..];
                let port = p.parse::<u16>().map_err(|_| format!("'{url}': invalid port '{p}'"))?;
                (auth[..i].to_string(), port)
            }
            None => (auth.to_string(), 80),
        };
        if host.is_empty() {
            return Err(format!("'{url}': no host"));
        }
        if port == 0 {
            return Err(format!("'{url}': port 0 is not a server port"));
        }
        Ok(Endpoint { authority: format!("{host}:{port}"), host, port, path: path.to_string() })
    }
}

/// Why a request failed, in the classes results report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Connect,
    Timeout,
    Http4xx,
    Http5xx,
    StreamBroken,
    Other,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::Http4xx,
        ErrorClass::Http5xx,
        ErrorClass::StreamBroken,
        ErrorClass::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Http4xx => "http_4xx",
            ErrorClass::Http5xx => "http_5xx",
            ErrorClass::StreamBroken => "stream_broken",
            ErrorClass::Other => "other",
        }
    }
}

#[derive(Debug)]
pub struct Failure {
    pub class: ErrorClass,
    pub message: String,
}

impl Failure {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Failure {
        Failure { class, message: message.into() }
    }
}

/// Receives a response as it arrives.
pub trait BodySink {
    fn head(&mut self, status: u16, at: Instant);
    /// A piece of the (de-chunked) body and when it arrived.
    fn data(&mut self, bytes: &[u8], at: Instant);
    /// Why the sink will take no more (a body or event past its limit):
    /// the exchange ends there, as a broken stream.
    fn failed(&self) -> Option<String> {
        None
    }
}

/// How the response ended.
pub struct Finished {
    pub status: u16,
    /// The server asked to close (or spoke HTTP/1.0): do not reuse.
    pub close: bool,
}

pub struct Conn {
    sock: TcpStream,
    /// What has been read; `buf.len() == end`.
    buf: Vec<u8>,
    /// Bytes of `buf` not yet consumed.
    start: usize,
    end: usize,
    pub requests: u64,
}

enum BodyKind {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

const READ_CHUNK: usize = 64 * 1024;
/// The longest response head (status line and headers) read.
const MAX_HEAD: usize = 256 * 1024;
/// The longest chunk-size line (with extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

impl Conn {
    pub async fn connect(ep: &Endpoint) -> Result<Conn, Failure> {
        let sock = TcpStream::connect(&ep.authority)
            .await
            .map_err(|e| Failure::new(ErrorClass::Connect, format!("connect {}: {e}", ep.authority)))?;
        let _ = sock.set_nodelay(true);
        Ok(Conn { sock, buf: Vec::with_capacity(READ_CHUNK), start: 0, end: 0, requests: 0 })
    }

    /// Reads what the socket has into the buffer's spare room (never
    /// zeroed first: a new connection costs no 64 KiB memset and touches
    /// only the pages its responses fill).
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.buf.clear();
        } else if self.buf.len() == self.buf.capacity() {
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            } else {
                self.buf.reserve(self.buf.len());
            }
        }
        let n = self.sock.read_buf(&mut self.buf).await?;
        self.end = self.buf.len();
        Ok(n)
    }

    /// Sends one request (already formatted) and reads the whole response
    /// into `sink`. `Err` with `sent_nothing_back` = the connection was dead
    /// before any response byte: safe to retry on a new connection.
    pub async fn exchange<S: BodySink>(&mut self, request: &[u8], sink: &mut S) -> Result<Finished, (Failure, bool)> {
        self.exchange_from(request, 0, sink).await
    }

    /// Writes what the socket takes of `request` now, without waiting, from
    /// any thread (the open loop's pacer sends at its own wake-up); the
    /// bytes written, 0 when the socket would block or failed (the error
    /// comes back from the exchange that follows).
    pub fn try_send(&self, request: &[u8]) -> usize {
        self.sock.try_write(request).unwrap_or(0)
    }

    /// `exchange` for a request whose first `written` bytes `try_send`
    /// already wrote.
    pub async fn exchange_from<S: BodySink>(
        &mut self,
        request: &[u8],
        written: usize,
        sink: &mut S,
    ) -> Result<Finished, (Failure, bool)> {
        self.requests += 1;
        if let Err(e) = self.sock.write_all(&request[written.min(request.len())..]).await {
            return Err((Failure::new(ErrorClass::Other, format!("sending request: {e}")), true));
        }
        // Response head.
        let (status, kind, close, consumed) = loop {
            if self.end > self.start {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete(n)) => {
                        let status = resp.code.unwrap_or(0);
                        let http10 = resp.version == Some(0);
                        let mut kind = BodyKind::UntilClose;
                        let mut close = http10;
                        for h in resp.headers.iter() {
                            if h.name.eq_ignore_ascii_case("content-length") {
                                let v = std::str::from_utf8(h.value).ok().and_then(|s| s.trim().parse::<u64>().ok());
                                match v {
                                    Some(n) => kind = BodyKind::Length(n),
                                    None => {
                                        return Err((Failure::new(ErrorClass::Other, "invalid Content-Length"), false));
                                    }
                                }
                            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                                if h.value.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked")) {
                                    kind = BodyKind::Chunked;
                                }
                            } else if h.name.eq_ignore_ascii_case("connection") {
                                if h.value.windows(5).any(|w| w.eq_ignore_ascii_case(b"close")) {
                                    close = true;
                                } else if h.value.windows(10).any(|w| w.eq_ignore_ascii_case(b"keep-alive")) {
                                    close = false;
                                }
                            }
                        }
                        if (100..200).contains(&status) && status != 101 {
                            // An interim response (100 Continue, 103 Early
                            // Hints): the real one follows on the same connection.
                            self.start += n;
                            continue;
                        }
                        if status == 204 || status == 304 || status == 101 {
                            kind = BodyKind::None;
                        }
                        break (status, kind, close, n);
                    }
                    Ok(httparse::Status::Partial) if self.end - self.start > MAX_HEAD => {
                        return Err((
                            Failure::new(ErrorClass::Other, format!("response head longer than {MAX_HEAD} bytes")),
                            false,
                        ));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => {
                        return Err((Failure::new(ErrorClass::Other, format!("invalid HTTP response: {e}")), false));
                    }
                }
            }
            let before = self.end - self.start;
            match self.fill().await {
                Ok(0) => {
                    let nothing = before == 0;
                    return Err((Failure::new(ErrorClass::Other, "connection closed before the response"), nothing));
                }
                Ok(_) => {}
                Err(e) => {
                    let nothing = before == 0;
                    let class = if nothing { ErrorClass::Other } else { ErrorClass::StreamBroken };
                    return Err((Failure::new(class, format!("reading response: {e}")), nothing));
                }
            }
        };
        let now = Instant::now();
        sink.head(status, now);
        self.start += consumed;
        let broken = |what: &str| (Failure::new(ErrorClass::StreamBroken, what.to_string()), false);
        match kind {
            BodyKind::None => {}
            BodyKind::Length(mut left) => {
                let mut at = now;
                loop {
                    self.pass_body(sink, &mut left, at);
                    if let Some(m) = sink.failed() {
                        return Err(broken(&m));
                    }
                    if left == 0 {
                        break;
                    }
                    self.read_more(&mut at).await.map_err(|m| broken(&m))?;
                }
            }
            BodyKind::UntilClose => {
                let mut at = now;
                loop {
                    if self.end > self.start {
                        sink.data(&self.buf[self.start..self.end], at);
                        self.start = self.end;
                        if let Some(m) = sink.failed() {
                            return Err(broken(&m));
                        }
                    }
                    match self.fill().await {
                        Ok(0) => break,
                        Ok(_) => at = Instant::now(),
                        Err(e) => return Err(broken(&format!("reading body: {e}"))),
                    }
                }
                return Ok(Finished { status, close: true });
            }
            BodyKind::Chunked => self.read_chunked(sink, now).await.map_err(|m| broken(&m))?,
        }
        Ok(Finished { status, close })
    }

    /// Hands the sink what is buffered of the `left` body bytes still due;
    /// returns how many it handed over.
    fn pass_body<S: BodySink>(&mut self, sink: &mut S, left: &mut u64, at: Instant) -> usize {
        let take = ((self.end - self.start) as u64).min(*left) as usize;
        if take > 0 {
            sink.data(&self.buf[self.start..self.start + take], at);
            self.start += take;
            *left -= take as u64;
        }
        take
    }

    async fn read_chunked<S: BodySink>(&mut self, sink: &mut S, mut at: Instant) -> Result<(), String> {
        // Chunk sizes and data arrive in any split; data goes to the sink as
        // soon as any of it is here.
        let mut left: u64 = 0;
        loop {
            if left > 0 {
                if self.pass_body(sink, &mut left, at) > 0 {
                    if let Some(m) = sink.failed() {
                        return Err(m);
                    }
                    if left == 0 {
                        // The CRLF after the data.
                        self.expect_crlf(&mut at).await?;
                    }
                    continue;
                }
            } else if let Some(pos) = find_crlf(&self.buf[self.start..self.end]) {
                let line = &self.buf[self.start..self.start + pos];
                let size_txt = std::str::from_utf8(line).map_err(|_| "invalid chunk size".to_string())?;
                let size_txt = size_txt.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size_txt, 16).map_err(|_| format!("invalid chunk size '{size_txt}'"))?;
                self.start += pos + 2;
                if size == 0 {
                    // Trailers (usually none) up to the blank line.
                    loop {
                        if let Some(p) = find_crlf(&self.buf[self.start..self.end]) {
                            self.start += p + 2;
                            if p == 0 {
                                return Ok(());
                            }
                            continue;
                        }
                        self.read_more(&mut at).await?;
                    }
                }
                left = size;
                continue;
            } else if self.end - self.start > MAX_CHUNK_LINE {
                return Err(format!("chunk-size line longer than {MAX_CHUNK_LINE} bytes"));
            }
            self.read_more(&mut at).await?;
        }
    }

    async fn expect_crlf(&mut self, at: &mut Instant) -> Result<(), String> {
        while self.end - self.start < 2 {
            self.read_more(at).await?;
        }
        if &self.buf[self.start..self.start + 2] != b"\r\n" {
            return Err("malformed chunked body".into());
        }
        self.start += 2;
        Ok(())
    }

    async fn read_more(&mut self, at: &mut Instant) -> Result<(), String> {
        match self.fill().await {
            Ok(0) => Err("connection closed before the end of the body".into()),
            Ok(_) => {
                *at = Instant::now();
                Ok(())
            }
            Err(e) => Err(format!("reading body: {e}")),
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// Formats a request once: the bytes written for every send.
pub fn format_request(method: &str, path: &str, ep: &Endpoint, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(ep.authority.as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: aibench/");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || method != "GET" {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://node1:8000").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("node1", 8000, "/"));
        let e = Endpoint::parse("http://127.0.0.1/v1/x").unwrap();
        assert_eq!((e.port, e.path.as_str()), (80, "/v1/x"));
        assert!(Endpoint::parse("https://x").unwrap_err().contains("https is not supported"));
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("http://x:99999").unwrap_err().contains("invalid port"));
        assert!(Endpoint::parse("http://:80").is_err());
        let e = Endpoint::parse("http://[::1]/x").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.authority.as_str()), ("[::1]", 80, "[::1]:80"));
        let e = Endpoint::parse("http://[::1]:8000").unwrap();
        assert_eq!(e.port, 8000);
    }

    struct Collect(u16, Vec<u8>);
    impl BodySink for Collect {
        fn head(&mut self, status: u16, _: Instant) {
            self.0 = status;
        }
        fn data(&mut self, bytes: &[u8], _: Instant) {
            self.1.extend_from_slice(bytes);
        }
    }

    /// A one-connection server: for each request it reads, it writes the
    /// next reply in `piece`-byte writes (pausing between them, so that the
    /// client reads them split). Returns a connection to it.
    async fn replying(replies: Vec<&'static str>, piece: usize) -> (Endpoint, Conn) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = [0u8; 1024];
            for reply in replies {
                let _ = s.read(&mut buf).await.unwrap();
                for part in reply.as_bytes().chunks(piece) {
                    s.write_all(part).await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_micros(200)).await;
                }
            }
            let _ = s.read(&mut buf).await;
        });
        let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let c = Conn::connect(&ep).await.unwrap();
        (ep, c)
    }

    #[tokio::test]
    async fn interim_responses_are_skipped() {
        let reply = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n\
                     HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let (ep, mut c) = replying(vec![reply], usize::MAX).await;
        let mut sink = Collect(0, Vec::new());
        let f = c.exchange(&format_request("GET", "/", &ep, &[], b""), &mut sink).await.ok().unwrap();
        assert_eq!((f.status, sink.0, sink.1.as_slice()), (200, 200, &b"hello"[..]));
    }

    /// Length-framed and chunked bodies on one keep-alive connection, each
    /// written 3 bytes at a time so sizes, data and CRLFs arrive split.
    #[tokio::test]
    async fn bodies_arrive_whole_from_any_split() {
        let replies = vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
        ];
        let (ep, mut c) = replying(replies, 3).await;
        for _ in 0..2 {
            let mut sink = Collect(0, Vec::new());
            let f = c.exchange(&format_request("GET", "/", &ep, &[], b""), &mut sink).await.ok().unwrap();
            assert_eq!((f.status, f.close, sink.1.as_slice()), (200, false, &b"hello world"[..]));
        }
    }

    #[test]
    fn request_bytes() {
        let e = Endpoint::parse("http://h:1").unwrap();
        let r = format_request("POST", "/p", &e, &[("X-A".into(), "b".into())], b"{}");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            format!(
                "POST /p HTTP/1.1\r\nHost: h:1\r\nUser-Agent: aibench/{}\r\nX-A: b\r\nContent-Length: 2\r\n\r\n{{}}",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}

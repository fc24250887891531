//! The input side of `dt-signature explain`: a captured request read from a raw HTTP/1.1
//! capture (as `nc -l` saves it), a headers file (`Name: value` lines, as a receiver's log
//! or a proxy shows a request's headers) and a body file, or a HAR 1.2 file (the first
//! entry's request). Nothing here decides anything about signatures: it turns files into
//! the header map and the exact body bytes the library verifies, and says which bytes
//! those are when the file holds more or fewer than `Content-Length` ([`BodyNote`]).
//!
//! Bad input is an [`InputError`], one line that names the problem, never a panic.

use std::fmt;
use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The largest body `explain` reads: 16 MiB (DT's events are a few hundred bytes).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// The most header bytes a capture may hold before its body.
const MAX_HEAD: usize = 1024 * 1024;

/// The largest HAR file read (JSON escaping and base64 inflate a 16 MiB body).
const MAX_HAR: usize = 8 * MAX_BODY;

/// A captured request: its headers and its body, byte for byte.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// Every header, repeated ones kept in order.
    pub headers: HeaderMap,
    /// The body as the receiver got it (a chunked body de-chunked).
    pub body: Vec<u8>,
    /// The file's body and `Content-Length` disagree: which bytes are verified.
    pub body_note: Option<BodyNote>,
}

/// A body whose file holds another number of bytes than `Content-Length` says: a server
/// reads `Content-Length` bytes, so that is what is verified unless `--file-bytes` asks
/// for the file's bytes as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyNote {
    /// What `Content-Length` says.
    pub content_length: usize,
    /// The bytes the file holds for the body (after the headers, for a raw capture).
    pub file_bytes: usize,
    /// Whether the file's bytes are verified (`--file-bytes`, or a body file shorter than
    /// `Content-Length`), not the `Content-Length` bytes a server reads.
    pub file_verified: bool,
}

impl BodyNote {
    /// The note, one line: what was verified, and how to verify the other bytes.
    pub fn text(&self) -> String {
        let (length, file) = (self.content_length, self.file_bytes);
        match (self.file_verified, file > length) {
            (false, _) => format!(
                "the server read {length} bytes (Content-Length); the file holds {file}: the \
                 extra bytes were not part of the body (--file-bytes verifies the file's \
                 bytes as they are)"
            ),
            (true, true) => format!(
                "verified the file's {file} bytes as they are (--file-bytes); a server reads \
                 {length} (Content-Length) and ignores the rest"
            ),
            (true, false) => format!(
                "verified the file's {file} bytes; Content-Length says {length}: a server \
                 would wait for the rest of the body"
            ),
        }
    }
}

/// How the file given as `REQUEST` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// HAR when the file starts with `{`, else a raw HTTP/1.1 request.
    #[default]
    Auto,
    /// A raw HTTP/1.1 request: request line, headers, empty line, body.
    Raw,
    /// HAR 1.2: the first entry's request.
    Har,
}

/// Why a capture cannot be read: one line, naming the file and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(String);

impl InputError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The same error, about the file at `path`.
    fn in_file(self, path: &Path) -> Self {
        Self(format!("{}: {}", path.display(), self.0))
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// The request in the file at `path`, read as `format` says; `file_bytes`: its body as
/// the file holds it, not the `Content-Length` bytes a server reads.
pub fn read_request(path: &Path, format: Format, file_bytes: bool) -> Result<Captured, InputError> {
    let bytes = read_file(
        path,
        MAX_HAR.max(MAX_HEAD + MAX_BODY),
        "explain reads bodies up to 16 MiB",
    )?;
    let har = match format {
        Format::Har => true,
        Format::Raw => false,
        Format::Auto => bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
    };
    let parsed = if har {
        parse_har(&bytes)
    } else {
        parse_raw_as(&bytes, file_bytes)
    };
    parsed.map_err(|error| error.in_file(path))
}

/// The request of a headers file (`Name: value` lines) and a body file: the
/// `content-length` bytes a server reads when the file holds more (all of them with
/// `file_bytes`), else the file's bytes as they are.
pub fn read_split(headers: &Path, body: &Path, file_bytes: bool) -> Result<Captured, InputError> {
    let text = read_file(headers, MAX_HEAD, "is it a headers file?")?;
    let headers_map = parse_headers_file(&text).map_err(|error| error.in_file(headers))?;
    let mut body = read_file(body, MAX_BODY, "explain reads bodies up to 16 MiB")?;
    let length = content_length(&headers_map).map_err(|error| error.in_file(headers))?;
    let body_note = match length {
        Some(length) if length != body.len() => {
            let note = BodyNote {
                content_length: length,
                file_bytes: body.len(),
                file_verified: file_bytes || body.len() < length,
            };
            if !note.file_verified {
                body.truncate(length);
            }
            Some(note)
        }
        _ => None,
    };
    Ok(Captured {
        headers: headers_map,
        body,
        body_note,
    })
}

/// The `Content-Length` header as a number, if there is one.
fn content_length(headers: &HeaderMap) -> Result<Option<usize>, InputError> {
    let Some(length) = headers.get(http::header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    length
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| InputError::new("the Content-Length header is not a number"))
}

/// The bytes of the file at `path`, at most `limit` of them (over it, an error that ends
/// with `hint`).
fn read_file(path: &Path, limit: usize, hint: &str) -> Result<Vec<u8>, InputError> {
    let unreadable =
        |error: std::io::Error| InputError::new(format!("cannot read {}: {error}", path.display()));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() > limit {
        return Err(InputError::new(format!(
            "{} is over {}: {hint}",
            path.display(),
            size(limit)
        )));
    }
    Ok(bytes)
}

/// `n` bytes in MiB or bytes, for messages.
fn size(n: usize) -> String {
    if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", n / (1024 * 1024))
    } else {
        format!("{n} bytes")
    }
}

fn too_large(len: usize) -> InputError {
    InputError::new(format!(
        "the body is over 16 MiB ({len} bytes): explain reads bodies up to {}",
        size(MAX_BODY)
    ))
}

/// A raw HTTP/1.1 request as `nc -l` captures it: the request line, the header lines, an
/// empty line, then the body (`Content-Length` bytes, a chunked body, or the rest).
pub fn parse_raw(bytes: &[u8]) -> Result<Captured, InputError> {
    parse_raw_as(bytes, false)
}

/// [`parse_raw`]; with `file_bytes`, the body is every byte after the headers (a chunked
/// body still de-chunked), whatever `Content-Length` says.
pub fn parse_raw_as(bytes: &[u8], file_bytes: bool) -> Result<Captured, InputError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::new("the request is empty"));
    }
    let Some((head, rest)) = split_head(bytes) else {
        return Err(InputError::new(
            "truncated request: the headers do not end with an empty line",
        ));
    };
    let mut lines = head.split(|&b| b == b'\n').map(trim_cr);
    let first = lines.next().unwrap_or_default();
    if !is_request_line(first) {
        return Err(InputError::new(
            "the first line is not an HTTP/1.1 request line (such as `POST / HTTP/1.1`): \
             is this a raw request? (use --format har, or --headers and --body)",
        ));
    }
    let headers = parse_header_lines(lines, 2)?;
    if headers.is_empty() {
        return Err(InputError::new("the request has no headers"));
    }
    let (body, body_note) = raw_body(&headers, rest, file_bytes)?;
    Ok(Captured {
        headers,
        body,
        body_note,
    })
}

/// The head (without the empty line) and what follows it; `None` if no empty line ends it.
fn split_head(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut start = 0;
    while let Some(end) = bytes[start..].iter().position(|&b| b == b'\n') {
        let line = trim_cr(&bytes[start..start + end]);
        if line.is_empty() && start > 0 {
            let head = &bytes[..start.saturating_sub(1)];
            return Some((head, &bytes[start + end + 1..]));
        }
        start += end + 1;
    }
    None
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `METHOD SP target SP HTTP/x.y`.
fn is_request_line(line: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    let parts: Vec<&str> = line.split(' ').collect();
    matches!(parts.as_slice(), [method, target, version]
        if !method.is_empty()
            && method.bytes().all(|b| b.is_ascii_uppercase())
            && !target.is_empty()
            && version.starts_with("HTTP/"))
}

/// The body after the head: `Content-Length` bytes (all of `rest` with `file_bytes`), a
/// de-chunked body, or all of `rest`; and a note when `rest` holds more than
/// `Content-Length`.
fn raw_body(
    headers: &HeaderMap,
    rest: &[u8],
    file_bytes: bool,
) -> Result<(Vec<u8>, Option<BodyNote>), InputError> {
    let chunked = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"chunked"));
    if chunked {
        return Ok((dechunk(rest)?, None));
    }
    let Some(length) = content_length(headers)? else {
        if rest.len() > MAX_BODY {
            return Err(too_large(rest.len()));
        }
        return Ok((rest.to_vec(), None));
    };
    if length > MAX_BODY {
        return Err(too_large(length));
    }
    if rest.len() < length {
        return Err(InputError::new(format!(
            "truncated request: Content-Length says {length} bytes, the capture has {} after the headers",
            rest.len()
        )));
    }
    if rest.len() == length {
        return Ok((rest.to_vec(), None));
    }
    if rest.len() > MAX_BODY {
        return Err(too_large(rest.len()));
    }
    let note = BodyNote {
        content_length: length,
        file_bytes: rest.len(),
        file_verified: file_bytes,
    };
    let body = if file_bytes { rest } else { &rest[..length] };
    Ok((body.to_vec(), Some(note)))
}

/// A `Transfer-Encoding: chunked` body, de-chunked (trailers ignored).
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, InputError> {
    let truncated =
        || InputError::new("truncated request: the chunked body ends before its last chunk");
    let mut body = Vec::new();
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(truncated)?;
        let size_line = std::str::from_utf8(trim_cr(&rest[..end]))
            .map_err(|_| InputError::new("a chunk size line is not ASCII"))?;
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| InputError::new("a chunk size of the chunked body is not hexadecimal"))?;
        rest = &rest[end + 1..];
        if size == 0 {
            return Ok(body);
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(too_large(body.len().saturating_add(size)));
        }
        if rest.len() < size {
            return Err(truncated());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .ok_or_else(truncated)?;
    }
}

/// A headers file: an optional request (or status) line, then `Name: value` lines, as a
/// receiver's log, a proxy or the head of an `nc -l` capture shows a request's headers.
/// When it holds several blocks (a `100 Continue`, redirects), the last one is used.
pub fn parse_headers_file(bytes: &[u8]) -> Result<HeaderMap, InputError> {
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').map(trim_cr).collect();
    let mut blocks: Vec<Vec<(usize, &[u8])>> = vec![Vec::new()];
    for (n, line) in lines.iter().enumerate() {
        if line.is_empty() {
            if blocks.last().is_some_and(|block| !block.is_empty()) {
                blocks.push(Vec::new());
            }
        } else if let Some(block) = blocks.last_mut() {
            block.push((n + 1, line));
        }
    }
    let block = blocks
        .into_iter()
        .rev()
        .find(|block| block.iter().any(|(_, line)| !is_start_line(line)))
        .ok_or_else(|| InputError::new("no `Name: value` header line"))?;
    let mut headers = HeaderMap::new();
    for (n, line) in block {
        if is_start_line(line) {
            continue;
        }
        add_header(&mut headers, n, line)?;
    }
    Ok(headers)
}

/// A status line (`HTTP/1.1 200 OK`) or a request line.
fn is_start_line(line: &[u8]) -> bool {
    line.starts_with(b"HTTP/") || is_request_line(line)
}

/// `Name: value` lines, numbered from `first` for messages.
fn parse_header_lines<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    first: usize,
) -> Result<HeaderMap, InputError> {
    let mut headers = HeaderMap::new();
    for (n, line) in lines.enumerate() {
        add_header(&mut headers, first + n, line)?;
    }
    Ok(headers)
}

/// One `Name: value` line (line number `n`) added to `headers`.
fn add_header(headers: &mut HeaderMap, n: usize, line: &[u8]) -> Result<(), InputError> {
    let line = std::str::from_utf8(line).map_err(|_| {
        InputError::new(format!(
            "line {n}: the header is not UTF-8 (headers are ASCII)"
        ))
    })?;
    if line.starts_with([' ', '\t']) {
        return Err(InputError::new(format!(
            "line {n}: a folded header line (starting with a space) is not supported"
        )));
    }
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| InputError::new(format!("line {n}: not a `Name: value` header line")))?;
    insert(headers, name, value.trim_matches([' ', '\t']))
        .map_err(|problem| InputError::new(format!("line {n}: {problem}")))
}

/// Appends `name: value` (repeated headers are kept, so a duplicated signature is seen).
fn insert(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), String> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    let value = HeaderValue::from_str(value)
        .map_err(|_| format!("the value of {header} holds a control character"))?;
    headers.append(header, value);
    Ok(())
}

/// HAR 1.2: the first entry's request; its `postData.text` is the body, base64-decoded when
/// `postData.encoding` is `base64`. HTTP/2 pseudo-headers (`:authority`, ...) are skipped.
pub fn parse_har(bytes: &[u8]) -> Result<Captured, InputError> {
    let har: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|error| InputError::new(format!("not a HAR file (invalid JSON: {error})")))?;
    let request = har
        .pointer("/log/entries/0/request")
        .ok_or_else(|| InputError::new(
            "not a HAR file: no log.entries[0].request (a body alone? use --headers FILE --body FILE)",
        ))?;
    let list = request
        .get("headers")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| InputError::new("HAR: log.entries[0].request has no headers list"))?;
    let mut headers = HeaderMap::new();
    for (n, header) in list.iter().enumerate() {
        let field = |key: &str| header.get(key).and_then(serde_json::Value::as_str);
        let (Some(name), Some(value)) = (field("name"), field("value")) else {
            return Err(InputError::new(format!(
                "HAR: request header {n} has no string name and value"
            )));
        };
        if name.starts_with(':') {
            continue;
        }
        insert(&mut headers, name, value)
            .map_err(|problem| InputError::new(format!("HAR: request header {n}: {problem}")))?;
    }
    if headers.is_empty() {
        return Err(InputError::new("HAR: the request has no headers"));
    }
    let body = match request.get("postData") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(post) => {
            let text = post
                .get("text")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            match post.get("encoding").and_then(serde_json::Value::as_str) {
                Some("base64") => base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|_| InputError::new("HAR: postData.text is not valid base64"))?,
                None | Some("") => text.as_bytes().to_vec(),
                Some(other) => {
                    return Err(InputError::new(format!(
                        "HAR: postData.encoding {other:?} is unknown (base64 or none)"
                    )))
                }
            }
        }
    };
    if body.len() > MAX_BODY {
        return Err(too_large(body.len()));
    }
    Ok(Captured {
        headers,
        body,
        body_note: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"POST /dt HTTP/1.1\r\nHost: x\r\nX-Dt-Signature: a.b.c\r\nContent-Length: 4\r\n\r\nbodyEXTRA";

    #[test]
    fn raw_request_with_content_length() {
        let captured = parse_raw(REQUEST).unwrap();
        assert_eq!(captured.body, b"body");
        assert_eq!(captured.headers["x-dt-signature"], "a.b.c");
        assert_eq!(captured.headers.len(), 3);
    }

    /// Bytes after Content-Length are not the body, and the note says so; with
    /// `file_bytes` they are, and the note says that.
    #[test]
    fn raw_request_with_more_bytes_than_content_length() {
        let captured = parse_raw(REQUEST).unwrap();
        let note = captured.body_note.unwrap();
        assert_eq!((note.content_length, note.file_bytes), (4, 9));
        assert!(!note.file_verified);
        assert_eq!(
            note.text(),
            "the server read 4 bytes (Content-Length); the file holds 9: the extra bytes were \
             not part of the body (--file-bytes verifies the file's bytes as they are)"
        );
        let captured = parse_raw_as(REQUEST, true).unwrap();
        assert_eq!(captured.body, b"bodyEXTRA");
        assert!(captured.body_note.unwrap().file_verified);
        let exact = b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_raw(exact).unwrap().body_note, None);
    }

    /// `--headers`/`--body`: a `content-length` shorter than the file is what a server
    /// reads (the file with `file_bytes`); a longer one verifies the file, with a note.
    #[test]
    fn split_files_and_content_length() {
        let dir = std::env::temp_dir().join(format!("dt-explain-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (headers, body) = (dir.join("headers.txt"), dir.join("body.json"));
        std::fs::write(&body, b"{}\n").unwrap();
        for (length, file_bytes, verified, file_verified) in [
            ("2", false, &b"{}"[..], false),
            ("2", true, &b"{}\n"[..], true),
            ("9", false, &b"{}\n"[..], true),
        ] {
            std::fs::write(
                &headers,
                format!("X-Dt-Signature: t\ncontent-length: {length}\n"),
            )
            .unwrap();
            let captured = read_split(&headers, &body, file_bytes).unwrap();
            assert_eq!(captured.body, verified, "{length} {file_bytes}");
            let note = captured.body_note.unwrap();
            assert_eq!(note.file_verified, file_verified);
            assert_eq!(note.file_bytes, 3);
        }
        std::fs::write(&headers, "X-Dt-Signature: t\ncontent-length: 3\n").unwrap();
        assert_eq!(read_split(&headers, &body, false).unwrap().body_note, None);
        std::fs::write(&headers, "X-Dt-Signature: t\n").unwrap();
        assert_eq!(read_split(&headers, &body, false).unwrap().body_note, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn raw_request_with_bare_newlines_and_no_length_takes_the_rest() {
        let captured = parse_raw(b"POST / HTTP/1.1\nA: 1\n\n{}\n").unwrap();
        assert_eq!(captured.body, b"{}\n");
    }

    #[test]
    fn raw_request_chunked() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_raw(raw).unwrap().body, b"abcde");
        let cut = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab";
        assert!(parse_raw(cut).unwrap_err().0.contains("truncated"));
    }

    #[test]
    fn repeated_headers_are_kept() {
        let captured =
            parse_raw(b"POST / HTTP/1.1\r\nX-Dt-Signature: a\r\nx-dt-signature: b\r\n\r\n")
                .unwrap();
        assert_eq!(captured.headers.get_all("x-dt-signature").iter().count(), 2);
    }

    #[test]
    fn bad_raw_requests() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"POST / HTTP/1.1\r\nA: 1\r\n", "truncated"),
            (b"{\"event\":1}\n\n", "request line"),
            (b"POST / HTTP/1.1\r\n\r\nbody", "no headers"),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
                "truncated",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
                "not a number",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
                "over 16 MiB",
            ),
            (
                b"POST / HTTP/1.1\r\nA: \xff\xfe\r\n\r\n",
                "line 2: the header is not UTF-8",
            ),
            (
                b"POST / HTTP/1.1\r\nno colon\r\n\r\n",
                "line 2: not a `Name: value`",
            ),
            (
                b"POST / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n",
                "line 3: a folded",
            ),
            (
                b"POST / HTTP/1.1\r\nBad Name: 1\r\n\r\n",
                "not a valid header name",
            ),
        ];
        for (raw, expected) in cases {
            let error = parse_raw(raw).unwrap_err().to_string();
            assert!(error.contains(expected), "{raw:?}: {error}");
            assert!(!error.contains('\n'), "one line: {error}");
        }
    }

    #[test]
    fn headers_file_as_curl_writes_it() {
        let text = b"HTTP/1.1 100 Continue\r\n\r\nPOST / HTTP/1.1\r\nX-Dt-Signature: t\r\nContent-Type: application/json\r\n\r\n";
        let headers = parse_headers_file(text).unwrap();
        assert_eq!(headers["x-dt-signature"], "t");
        assert_eq!(headers.len(), 2);
        // No start line at all.
        let headers = parse_headers_file(b"X-Dt-Signature: t\n").unwrap();
        assert_eq!(headers["x-dt-signature"], "t");
        assert!(parse_headers_file(b"\n\nHTTP/1.1 200 OK\n").is_err());
        let error = parse_headers_file(b"A: 1\nB: \xc3\x28\n").unwrap_err();
        assert!(error.0.contains("line 2"), "{error}");
    }

    #[test]
    fn har_first_entry() {
        let har = br#"{"log":{"version":"1.2","entries":[
            {"request":{"method":"POST","url":"http://x/","headers":[
                {"name":":authority","value":"x"},{"name":"x-dt-signature","value":"t"}],
                "postData":{"mimeType":"application/json","text":"eyJhIjoxfQ==","encoding":"base64"}}},
            {"request":{"headers":[{"name":"x-dt-signature","value":"second"}]}}]}}"#;
        let captured = parse_har(har).unwrap();
        assert_eq!(captured.headers["x-dt-signature"], "t");
        assert_eq!(captured.headers.len(), 1);
        assert_eq!(captured.body, br#"{"a":1}"#);
        let plain = br#"{"log":{"entries":[{"request":{"headers":[{"name":"A","value":"1"}],"postData":{"text":"{}\n"}}}]}}"#;
        assert_eq!(parse_har(plain).unwrap().body, b"{}\n");
    }

    #[test]
    fn bad_har_files() {
        let cases: &[(&[u8], &str)] = &[
            (b"{", "invalid JSON"),
            (br#"{"log":{"entries":[]}}"#, "no log.entries[0].request"),
            (br#"{"log":{"entries":[{"request":{}}]}}"#, "no headers list"),
            (br#"{"log":{"entries":[{"request":{"headers":[]}}]}}"#, "no headers"),
            (br#"{"log":{"entries":[{"request":{"headers":[{"name":"A","value":"1"}],"postData":{"text":"%%","encoding":"base64"}}}]}}"#, "not valid base64"),
            (br#"{"log":{"entries":[{"request":{"headers":[{"name":"A"}]}}]}}"#, "no string name"),
        ];
        for (har, expected) in cases {
            let error = parse_har(har).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains('\n'), "one line: {error}");
        }
    }
}

//! Response heads: the status line and the header fields (RFC 9112 4, 5).

use crate::request::is_tchar;
use crate::{Error, Header, ResponseHead, Version};

/// The most header lines accepted in one head (a header-count bomb stops here).
pub const MAX_HEADERS: usize = 256;

/// Parse a response head from the start of `data`.
///
/// `Ok(None)`: `data` ends before the blank line that ends the head (need
/// more). `Ok(Some((head, used)))`: a complete head and the bytes it took,
/// including the blank line. Lines may end in CRLF or a bare LF. Obsolete
/// line folding is replaced by a single space (RFC 9112 5.2).
///
/// Errors are reported as soon as a complete line shows them (and a NUL as
/// soon as it arrives), so a garbage reply fails before its end is seen.
///
/// ```text
/// HTTP-message = start-line CRLF *( field-line CRLF ) CRLF [ message-body ]
/// obs-fold     = OWS CRLF RWS
/// ```
pub fn parse_response_head(data: &[u8]) -> Result<Option<(ResponseHead, usize)>, Error> {
    let mut pos = 0;
    let Some(line) = next_line(data, &mut pos, true)? else {
        return Ok(None);
    };
    let (version, status, reason) = parse_status_line(line)?;
    // Room for a typical head's fields without growing.
    let mut headers: Vec<Header> = Vec::with_capacity(16);
    loop {
        let Some(line) = next_line(data, &mut pos, false)? else {
            return Ok(None);
        };
        if line.is_empty() {
            return Ok(Some((
                ResponseHead {
                    version,
                    status,
                    reason,
                    headers,
                },
                pos,
            )));
        }
        if let (Some(b' ' | b'\t'), Some(last)) = (line.first(), headers.last_mut()) {
            unfold(&mut last.value, line)?;
        } else if headers.len() >= MAX_HEADERS {
            return Err(Error::TooManyHeaders(headers.len() + 1));
        } else {
            headers.push(parse_header_line(line)?);
        }
    }
}

/// The next line of `data` from `*pos` without its line ending, or None when
/// the line is not complete yet. A NUL is an error even in an incomplete line.
fn next_line<'a>(data: &'a [u8], pos: &mut usize, status_line: bool) -> Result<Option<&'a [u8]>, Error> {
    let rest = data.get(*pos..).unwrap_or_default();
    let line = match rest.iter().position(|&b| b == b'\n') {
        Some(nl) => rest.get(..=nl).unwrap_or_default(),
        None => rest,
    };
    if line.contains(&0) {
        let msg = "nul byte in response head".to_string();
        return Err(if status_line {
            Error::BadStatusLine(msg)
        } else {
            Error::BadHeader(msg)
        });
    }
    if line.last() != Some(&b'\n') {
        return Ok(None);
    }
    *pos += line.len();
    Ok(Some(strip_eol(line)))
}

/// Parse one header line (without or with its line ending), as used for
/// trailers. Errors: [`Error::BadHeader`].
///
/// ```text
/// field-line  = field-name ":" OWS field-value OWS
/// field-name  = token
/// field-value = *field-content            ; NUL, CR and LF are never allowed
/// OWS         = *( SP / HTAB )
/// ```
/// No whitespace is allowed between the field name and the colon (RFC 9112 5.1).
pub fn parse_header_line(line: &[u8]) -> Result<Header, Error> {
    let line = strip_eol(line);
    let bad = |what: &str| Error::BadHeader(format!("{what}: {:?}", String::from_utf8_lossy(line)));
    let colon = line.iter().position(|&b| b == b':').ok_or_else(|| bad("no colon"))?;
    let (name, value) = (
        line.get(..colon).unwrap_or_default(),
        line.get(colon + 1..).unwrap_or_default(),
    );
    if name.is_empty() {
        return Err(bad("empty field name"));
    }
    if matches!(name.last(), Some(b' ' | b'\t')) {
        return Err(bad("whitespace before colon"));
    }
    if !name.iter().all(|&b| is_tchar(b)) {
        return Err(bad("field name is not a token"));
    }
    let value = trim_ows(value);
    if value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(bad("nul, cr or lf in field value"));
    }
    // A token is ASCII, so this never replaces anything.
    let name = lossy(name);
    Ok(Header {
        name,
        value: value.to_vec(),
    })
}

/// `bytes` as text, invalid UTF-8 replaced. Valid text (the usual case)
/// takes the standard library's fast check rather than the lossy decoder's
/// walk.
fn lossy(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Append an obs-fold continuation `line` to `value`, the fold replaced by
/// one SP (RFC 9112 5.2).
pub(crate) fn unfold(value: &mut Vec<u8>, line: &[u8]) -> Result<(), Error> {
    let more = trim_ows(strip_eol(line));
    if more.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(Error::BadHeader(format!(
            "nul, cr or lf in folded line: {:?}",
            String::from_utf8_lossy(line)
        )));
    }
    if !more.is_empty() {
        if !value.is_empty() {
            value.push(b' ');
        }
        value.extend_from_slice(more);
    }
    Ok(())
}

/// ```text
/// status-line  = HTTP-version SP status-code SP [ reason-phrase ]
/// HTTP-version = HTTP-name "/" DIGIT "." DIGIT
/// status-code  = 3DIGIT
/// reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
/// ```
/// Like curl, the SP after the status code may be missing too.
fn parse_status_line(line: &[u8]) -> Result<(Version, u16, String), Error> {
    let text = || String::from_utf8_lossy(line).into_owned();
    let version = match line.get(..8) {
        Some(b"HTTP/1.1") => Version::Http11,
        Some(b"HTTP/1.0") => Version::Http10,
        _ if line.starts_with(b"HTTP/") => {
            let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
            return Err(Error::UnsupportedVersion(
                String::from_utf8_lossy(line.get(..end).unwrap_or_default()).into_owned(),
            ));
        }
        _ => return Err(Error::BadStatusLine(text())),
    };
    let rest = line.get(8..).unwrap_or_default();
    let (code, reason) = match rest {
        [b' ', d @ b'1'..=b'9', e @ b'0'..=b'9', f @ b'0'..=b'9', tail @ ..] => {
            let code = u16::from(d - b'0') * 100 + u16::from(e - b'0') * 10 + u16::from(f - b'0');
            match tail {
                [] => (code, &[][..]),
                [b' ', reason @ ..] => (code, reason),
                _ => return Err(Error::BadStatusLine(text())),
            }
        }
        _ => return Err(Error::BadStatusLine(text())),
    };
    if reason.contains(&b'\r') {
        return Err(Error::BadStatusLine(text()));
    }
    Ok((version, code, lossy(reason)))
}

/// Drop a trailing "\n" or "\r\n" (a lone trailing CR is kept: it is a bare CR).
pub(crate) fn strip_eol(line: &[u8]) -> &[u8] {
    match line.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => line,
    }
}

/// Trim `OWS = *( SP / HTAB )` on both sides.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

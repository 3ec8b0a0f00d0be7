//! Body framing (RFC 9112 6.3) and the body decoder, driven through
//! `decode_in_memory` and step by step.

use wfetch_http_core::body::{decode_in_memory, framing, BodyDecoder, Framing, Step};
use wfetch_http_core::{Error, Header, ResponseHead, Version};

fn head(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
    ResponseHead {
        version: Version::Http11,
        status,
        reason: String::new(),
        headers: headers
            .iter()
            .map(|(n, v)| Header {
                name: n.to_string(),
                value: v.as_bytes().to_vec(),
            })
            .collect(),
    }
}

fn h(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.as_bytes().to_vec(),
    }
}

/// Rows `name: method status [name: value, ...] => result;`.
macro_rules! framings {
    ($($name:literal: $method:literal $status:literal [$($n:literal: $v:literal),*] => $want:expr;)*) => {$(
        assert_eq!(framing($method, &head($status, &[$(($n, $v)),*])), $want, "{}", $name);
    )*};
}

#[test]
fn framing_rules() {
    use Framing::*;
    let bad_cl = |m: &str| Err(Error::InvalidContentLength(m.into()));
    let bad_te = |m: &str| Err(Error::UnsupportedTransferEncoding(m.into()));
    framings! {
        "head": "HEAD" 200 ["Content-Length": "10"] => Ok(None);
        "head chunked": "HEAD" 200 ["Transfer-Encoding": "chunked"] => Ok(None);
        "100": "GET" 100 [] => Ok(None);
        "101": "GET" 101 ["Content-Length": "5"] => Ok(None);
        "199": "GET" 199 [] => Ok(None);
        "204": "GET" 204 ["Content-Length": "5"] => Ok(None);
        "304": "GET" 304 ["Content-Length": "5"] => Ok(None);
        "content-length": "GET" 200 ["Content-Length": "42"] => Ok(Length(42));
        "zero": "GET" 200 ["content-length": "0"] => Ok(Length(0));
        "leading zeros": "GET" 200 ["Content-Length": "007"] => Ok(Length(7));
        "max": "GET" 200 ["Content-Length": "18446744073709551615"] => Ok(Length(u64::MAX));
        "duplicate equal": "GET" 200 ["Content-Length": "5", "Content-Length": "5"] => Ok(Length(5));
        "comma list": "GET" 200 ["Content-Length": "5, 5 ,5"] => Ok(Length(5));
        "post": "POST" 201 ["Content-Length": "3"] => Ok(Length(3));
        "duplicate differing": "GET" 200 ["Content-Length": "5", "Content-Length": "6"] => bad_cl("differing values: 5, 6");
        "comma list differing": "GET" 200 ["Content-Length": "5, 6"] => bad_cl("differing values: 5, 6");
        "negative": "GET" 200 ["Content-Length": "-1"] => bad_cl("not a number: -1");
        "plus": "GET" 200 ["Content-Length": "+1"] => bad_cl("not a number: +1");
        "hex": "GET" 200 ["Content-Length": "0x10"] => bad_cl("not a number: 0x10");
        "empty": "GET" 200 ["Content-Length": ""] => bad_cl("not a number: ");
        "empty element": "GET" 200 ["Content-Length": "5,"] => bad_cl("not a number: 5, ");
        "inner space": "GET" 200 ["Content-Length": "1 2"] => bad_cl("not a number: 1 2");
        "overflow": "GET" 200 ["Content-Length": "18446744073709551616"] => bad_cl("not a number: 18446744073709551616");
        "chunked": "GET" 200 ["Transfer-Encoding": "chunked"] => Ok(Chunked);
        "chunked any case": "GET" 200 ["transfer-encoding": "Chunked"] => Ok(Chunked);
        "gzip, chunked": "GET" 200 ["Transfer-Encoding": "gzip, chunked"] => Ok(Chunked);
        "split over headers": "GET" 200 ["Transfer-Encoding": "gzip", "Transfer-Encoding": "chunked"] => Ok(Chunked);
        "te gzip": "GET" 200 ["Transfer-Encoding": "gzip"] => bad_te("gzip");
        "chunked, gzip": "GET" 200 ["Transfer-Encoding": "chunked, gzip"] => bad_te("chunked, gzip");
        "te identity": "GET" 200 ["Transfer-Encoding": "identity"] => bad_te("identity");
        "cl + te": "GET" 200 ["Content-Length": "5", "Transfer-Encoding": "chunked"] => Err(Error::ContentLengthWithTransferEncoding);
        "te + cl": "GET" 200 ["Transfer-Encoding": "chunked", "Content-Length": "5"] => Err(Error::ContentLengthWithTransferEncoding);
        "close-delimited": "GET" 200 ["Content-Type": "text/plain"] => Ok(CloseDelimited);
        "close-delimited 404": "GET" 404 [] => Ok(CloseDelimited);
        "205 without length": "GET" 205 [] => Ok(CloseDelimited);
    }
}

const PIECES: [u64; 4] = [1, 3, 7, 1 << 16];

/// Rows `name: input => body [trailer: value, ...] used;`: decoded the same
/// with every max_piece in [`PIECES`].
macro_rules! chunked_ok {
    ($($name:literal: $input:literal => $body:literal [$($n:literal: $v:literal),*] $used:literal;)*) => {$(
        for max_piece in PIECES {
            let got = decode_in_memory(Framing::Chunked, $input, max_piece);
            let want = ($body.to_vec(), vec![$(h($n, $v)),*], $used);
            assert_eq!(got, Ok(want), "{} max_piece={max_piece}", $name);
        }
    )*};
}

#[test]
fn chunked_bodies() {
    chunked_ok! {
        "simple": b"5\r\nhello\r\n0\r\n\r\n" => b"hello" [] 15;
        "two chunks, rest unused": b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT" => b"abcde" [] 20;
        "empty body": b"0\r\n\r\n" => b"" [] 5;
        "extensions ignored": b"5;name=value;x\r\nhello\r\n0;last\r\n\r\n" => b"hello" [] 33;
        "bws before extension": b"5 \t;a=\"q\"\r\nhello\r\n0 \r\n\r\n" => b"hello" [] 24;
        "bare lf": b"5\nhello\n0\n\n" => b"hello" [] 11;
        "uppercase hex": b"A\r\n0123456789\r\n0\r\n\r\n" => b"0123456789" [] 20;
        "lowercase hex": b"a\r\n0123456789\r\n0\r\n\r\n" => b"0123456789" [] 20;
        "leading zeros": b"0000000000000000000000005\r\nhello\r\n000\r\n\r\n" => b"hello" [] 41;
        "trailers": b"1\r\nx\r\n0\r\nExpires: never\r\nX-Sum:  abc \r\n\r\n" => b"x" ["Expires": "never", "X-Sum": "abc"] 41;
        "folded trailer": b"0\r\nX: a\r\n b\r\n\r\n" => b"" ["X": "a b"] 15;
        "crlf in data": b"4\r\n\r\n\r\n\r\n0\r\n\r\n" => b"\r\n\r\n" [] 14;
    }
}

/// Rows `name: input => error;`, the same with every max_piece in [`PIECES`].
macro_rules! chunked_err {
    ($($name:literal: $input:literal => $want:expr;)*) => {$(
        for max_piece in PIECES {
            let got = decode_in_memory(Framing::Chunked, $input, max_piece).map(|_| ());
            assert_eq!(got, Err($want), "{} max_piece={max_piece}", $name);
        }
    )*};
}

#[test]
fn chunked_errors() {
    use Error::*;
    let truncated = |received| Truncated {
        expected: None,
        received,
    };
    let size = |line: &str| InvalidChunkSize(line.into());
    chunked_err! {
        "overflow": b"8000000000000000\r\n" => ChunkSizeOverflow;
        "overflow u64": b"10000000000000000\r\n" => ChunkSizeOverflow;
        "huge": b"ffffffffffffffffffffffffffffffff\r\n" => ChunkSizeOverflow;
        "63 bits ok, then truncated": b"7fffffffffffffff\r\nab" => truncated(2);
        "not hex": b"g\r\n" => size("g");
        "empty size": b"\r\n" => size("");
        "leading space": b" 5\r\nhello\r\n0\r\n\r\n" => size(" 5");
        "0x prefix": b"0x5\r\nhello\r\n0\r\n\r\n" => size("0x5");
        "negative": b"-5\r\n" => size("-5");
        "junk after size": b"5 x\r\nhello\r\n0\r\n\r\n" => size("5 x");
        "missing terminator": b"5\r\nhelloX\r\n0\r\n\r\n" => MissingChunkTerminator;
        "data longer than size": b"3\r\nhello\r\n0\r\n\r\n" => MissingChunkTerminator;
        "terminator with spaces": b"5\r\nhello \r\n0\r\n\r\n" => MissingChunkTerminator;
        "missing last chunk": b"5\r\nhello\r\n" => truncated(5);
        "eof in data": b"5\r\nhel" => truncated(3);
        "eof in size line": b"5" => truncated(0);
        "eof before terminator": b"5\r\nhello" => truncated(5);
        "eof in terminator": b"5\r\nhello\r" => truncated(5);
        "eof in trailers": b"0\r\nX: y\r\n" => truncated(0);
        "no input": b"" => truncated(0);
        "bad trailer": b"0\r\nno colon\r\n\r\n" => BadTrailer("no colon: \"no colon\"".into());
        "trailer space before colon": b"0\r\nX : y\r\n\r\n" => BadTrailer("whitespace before colon: \"X : y\"".into());
        "trailer nul": b"0\r\nX: \0\r\n\r\n" => BadTrailer("nul, cr or lf in field value: \"X: \\0\"".into());
        "trailer fold first": b"0\r\n folded\r\n\r\n" => BadTrailer("no colon: \" folded\"".into());
    }
}

#[test]
fn too_many_trailers() {
    let mut input = b"0\r\n".to_vec();
    for i in 0..=wfetch_http_core::head::MAX_HEADERS {
        input.extend_from_slice(format!("T{i}: v\r\n").as_bytes());
    }
    input.extend_from_slice(b"\r\n");
    assert!(matches!(
        decode_in_memory(Framing::Chunked, &input, 64),
        Err(Error::TooManyHeaders(_))
    ));
}

/// Drive the decoder by hand and check that no ReadExact/ReadToEof asks for
/// more than `max_piece`.
fn drive(framing: Framing, input: &[u8], max_piece: u64) -> Vec<u8> {
    let mut dec = BodyDecoder::new(framing, max_piece);
    let (mut pos, mut out) = (0, Vec::new());
    loop {
        match dec.next_step() {
            Step::Done => return out,
            Step::ReadLine => {
                let len = input[pos..].iter().position(|&b| b == b'\n').unwrap() + 1;
                dec.on_line(&input[pos..pos + len]).unwrap();
                pos += len;
            }
            Step::ReadExact(n) | Step::ReadToEof(n) => {
                assert!((1..=max_piece).contains(&n), "asked for {n} with max_piece {max_piece}");
                let n = (n as usize).min(input.len() - pos);
                if n == 0 {
                    dec.on_eof().unwrap();
                    continue;
                }
                out.extend_from_slice(&input[pos..pos + n]);
                pos += n;
                dec.on_data(n as u64);
            }
        }
    }
}

#[test]
fn pieces_bounded_by_max_piece() {
    let chunked = b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n3;x=y\r\n123\r\n0\r\nT: 1\r\n\r\n";
    let expected = b"abcdefghijklmnopqrstuvwxyz123".to_vec();
    for max_piece in [1, 3, 7, 100] {
        assert_eq!(
            drive(Framing::Chunked, chunked, max_piece),
            expected,
            "max_piece={max_piece}"
        );
        assert_eq!(
            drive(Framing::Length(26), &chunked[4..], max_piece),
            &expected[..26],
            "max_piece={max_piece}"
        );
        assert_eq!(
            drive(Framing::CloseDelimited, &expected, max_piece),
            expected,
            "max_piece={max_piece}"
        );
        let whole = decode_in_memory(Framing::Chunked, chunked, max_piece).unwrap();
        assert_eq!(whole, (expected.clone(), vec![h("T", "1")], chunked.len()));
    }
}

/// Rows `(length, input, max_piece) => result;`.
macro_rules! length_cases {
    ($(($len:expr, $input:literal, $max:literal) => $want:expr;)*) => {$(
        let got = decode_in_memory(Framing::Length($len), $input, $max);
        assert_eq!(got, $want, "{} {:?}", $len, $input);
    )*};
}

#[test]
fn length_bodies() {
    let ok = |body: &[u8], used| Ok((body.to_vec(), vec![], used));
    let truncated = |expected, received| {
        Err(Error::Truncated {
            expected: Some(expected),
            received,
        })
    };
    length_cases! {
        (5, b"hello", 2) => ok(b"hello", 5);
        (5, b"helloEXTRA", 3) => ok(b"hello", 5);
        (0, b"ignored", 3) => ok(b"", 0);
        (10, b"hell", 3) => truncated(10, 4);
        (10, b"", 3) => truncated(10, 0);
        (u64::MAX, b"abc", 1048576) => truncated(u64::MAX, 3);
    }
}

#[test]
fn close_delimited_and_none() {
    for max_piece in [0, 1, 4, 1 << 20] {
        let got = decode_in_memory(Framing::CloseDelimited, b"all of it\r\n0\r\n\r\n", max_piece).unwrap();
        assert_eq!(got, (b"all of it\r\n0\r\n\r\n".to_vec(), vec![], 16));
        assert_eq!(
            decode_in_memory(Framing::CloseDelimited, b"", max_piece).unwrap(),
            (vec![], vec![], 0)
        );
        assert_eq!(
            decode_in_memory(Framing::None, b"HTTP/1.1 200 OK", max_piece).unwrap(),
            (vec![], vec![], 0)
        );
    }
}

#[test]
fn decoder_accounting() {
    let mut dec = BodyDecoder::new(Framing::Length(10), 4);
    assert_eq!(
        (dec.expected(), dec.received(), dec.next_step()),
        (Some(10), 0, Step::ReadExact(4))
    );
    dec.on_data(4);
    dec.on_data(4);
    assert_eq!((dec.received(), dec.next_step()), (8, Step::ReadExact(2)));
    assert_eq!(
        dec.on_eof(),
        Err(Error::Truncated {
            expected: Some(10),
            received: 8
        })
    );
    dec.on_data(2);
    assert_eq!((dec.next_step(), dec.on_eof()), (Step::Done, Ok(())));

    let mut dec = BodyDecoder::new(Framing::CloseDelimited, 0);
    assert_eq!(dec.next_step(), Step::ReadToEof(1));
    dec.on_data(100);
    assert_eq!(
        (dec.received(), dec.expected(), dec.on_eof(), dec.next_step()),
        (100, None, Ok(()), Step::Done)
    );

    let mut dec = BodyDecoder::new(Framing::Chunked, 8);
    assert_eq!(dec.next_step(), Step::ReadLine);
    assert_eq!(
        dec.on_line(b"5"),
        Err(Error::Truncated {
            expected: None,
            received: 0
        })
    );
    dec.on_line(b"20\r\n").unwrap();
    assert_eq!(dec.next_step(), Step::ReadExact(8));
    assert_eq!(
        dec.on_eof(),
        Err(Error::Truncated {
            expected: None,
            received: 0
        })
    );
    assert!(dec.trailers().is_empty());
}

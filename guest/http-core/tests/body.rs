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

#[test]
fn framing_rules() {
    use Framing::*;
    let te_cl = Err(Error::ContentLengthWithTransferEncoding);
    let cases: Vec<(&str, &str, u16, &[(&str, &str)], Result<Framing, Error>)> = vec![
        ("head", "HEAD", 200, &[("Content-Length", "10")], Ok(None)),
        (
            "head chunked",
            "HEAD",
            200,
            &[("Transfer-Encoding", "chunked")],
            Ok(None),
        ),
        ("100", "GET", 100, &[], Ok(None)),
        ("101", "GET", 101, &[("Content-Length", "5")], Ok(None)),
        ("199", "GET", 199, &[], Ok(None)),
        ("204", "GET", 204, &[("Content-Length", "5")], Ok(None)),
        ("304", "GET", 304, &[("Content-Length", "5")], Ok(None)),
        (
            "content-length",
            "GET",
            200,
            &[("Content-Length", "42")],
            Ok(Length(42)),
        ),
        (
            "zero",
            "GET",
            200,
            &[("content-length", "0")],
            Ok(Length(0)),
        ),
        (
            "leading zeros",
            "GET",
            200,
            &[("Content-Length", "007")],
            Ok(Length(7)),
        ),
        (
            "max",
            "GET",
            200,
            &[("Content-Length", "18446744073709551615")],
            Ok(Length(u64::MAX)),
        ),
        (
            "duplicate equal",
            "GET",
            200,
            &[("Content-Length", "5"), ("Content-Length", "5")],
            Ok(Length(5)),
        ),
        (
            "comma list",
            "GET",
            200,
            &[("Content-Length", "5, 5 ,5")],
            Ok(Length(5)),
        ),
        (
            "post",
            "POST",
            201,
            &[("Content-Length", "3")],
            Ok(Length(3)),
        ),
        (
            "duplicate differing",
            "GET",
            200,
            &[("Content-Length", "5"), ("Content-Length", "6")],
            Err(Error::InvalidContentLength("differing values: 5, 6".into())),
        ),
        (
            "comma list differing",
            "GET",
            200,
            &[("Content-Length", "5, 6")],
            Err(Error::InvalidContentLength("differing values: 5, 6".into())),
        ),
        (
            "negative",
            "GET",
            200,
            &[("Content-Length", "-1")],
            Err(Error::InvalidContentLength("not a number: -1".into())),
        ),
        (
            "plus",
            "GET",
            200,
            &[("Content-Length", "+1")],
            Err(Error::InvalidContentLength("not a number: +1".into())),
        ),
        (
            "hex",
            "GET",
            200,
            &[("Content-Length", "0x10")],
            Err(Error::InvalidContentLength("not a number: 0x10".into())),
        ),
        (
            "empty",
            "GET",
            200,
            &[("Content-Length", "")],
            Err(Error::InvalidContentLength("not a number: ".into())),
        ),
        (
            "empty element",
            "GET",
            200,
            &[("Content-Length", "5,")],
            Err(Error::InvalidContentLength("not a number: 5, ".into())),
        ),
        (
            "inner space",
            "GET",
            200,
            &[("Content-Length", "1 2")],
            Err(Error::InvalidContentLength("not a number: 1 2".into())),
        ),
        (
            "overflow",
            "GET",
            200,
            &[("Content-Length", "18446744073709551616")],
            Err(Error::InvalidContentLength(
                "not a number: 18446744073709551616".into(),
            )),
        ),
        (
            "chunked",
            "GET",
            200,
            &[("Transfer-Encoding", "chunked")],
            Ok(Chunked),
        ),
        (
            "chunked any case",
            "GET",
            200,
            &[("transfer-encoding", "Chunked")],
            Ok(Chunked),
        ),
        (
            "gzip, chunked",
            "GET",
            200,
            &[("Transfer-Encoding", "gzip, chunked")],
            Ok(Chunked),
        ),
        (
            "split over headers",
            "GET",
            200,
            &[
                ("Transfer-Encoding", "gzip"),
                ("Transfer-Encoding", "chunked"),
            ],
            Ok(Chunked),
        ),
        (
            "te gzip",
            "GET",
            200,
            &[("Transfer-Encoding", "gzip")],
            Err(Error::UnsupportedTransferEncoding("gzip".into())),
        ),
        (
            "chunked, gzip",
            "GET",
            200,
            &[("Transfer-Encoding", "chunked, gzip")],
            Err(Error::UnsupportedTransferEncoding("chunked, gzip".into())),
        ),
        (
            "te identity",
            "GET",
            200,
            &[("Transfer-Encoding", "identity")],
            Err(Error::UnsupportedTransferEncoding("identity".into())),
        ),
        (
            "cl + te",
            "GET",
            200,
            &[("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
            te_cl.clone(),
        ),
        (
            "te + cl",
            "GET",
            200,
            &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
            te_cl,
        ),
        (
            "close-delimited",
            "GET",
            200,
            &[("Content-Type", "text/plain")],
            Ok(CloseDelimited),
        ),
        ("close-delimited 404", "GET", 404, &[], Ok(CloseDelimited)),
        ("205 without length", "GET", 205, &[], Ok(CloseDelimited)),
    ];
    for (name, method, status, headers, want) in cases {
        assert_eq!(framing(method, &head(status, headers)), want, "{name}");
    }
}

/// (name, input, body, trailers, bytes used)
type ChunkedCase = (
    &'static str,
    &'static [u8],
    &'static [u8],
    Vec<Header>,
    usize,
);

fn chunked_ok() -> Vec<ChunkedCase> {
    vec![
        ("simple", b"5\r\nhello\r\n0\r\n\r\n", b"hello", vec![], 15),
        (
            "two chunks",
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT",
            b"abcde",
            vec![],
            20,
        ),
        ("empty body", b"0\r\n\r\n", b"", vec![], 5),
        (
            "extensions ignored",
            b"5;name=value;x\r\nhello\r\n0;last\r\n\r\n",
            b"hello",
            vec![],
            33,
        ),
        (
            "bws before extension",
            b"5 \t;a=\"q\"\r\nhello\r\n0 \r\n\r\n",
            b"hello",
            vec![],
            24,
        ),
        ("bare lf", b"5\nhello\n0\n\n", b"hello", vec![], 11),
        (
            "uppercase hex",
            b"A\r\n0123456789\r\n0\r\n\r\n",
            b"0123456789",
            vec![],
            20,
        ),
        (
            "lowercase hex",
            b"a\r\n0123456789\r\n0\r\n\r\n",
            b"0123456789",
            vec![],
            20,
        ),
        (
            "leading zeros",
            b"0000000000000000000000005\r\nhello\r\n000\r\n\r\n",
            b"hello",
            vec![],
            41,
        ),
        (
            "trailers",
            b"1\r\nx\r\n0\r\nExpires: never\r\nX-Sum:  abc \r\n\r\n",
            b"x",
            vec![h("Expires", "never"), h("X-Sum", "abc")],
            41,
        ),
        (
            "folded trailer",
            b"0\r\nX: a\r\n b\r\n\r\n",
            b"",
            vec![h("X", "a b")],
            15,
        ),
        (
            "crlf in data",
            b"4\r\n\r\n\r\n\r\n0\r\n\r\n",
            b"\r\n\r\n",
            vec![],
            14,
        ),
    ]
}

#[test]
fn chunked_bodies() {
    for (name, input, body, trailers, used) in chunked_ok() {
        for max_piece in [1, 3, 7, 1 << 16] {
            let got = decode_in_memory(Framing::Chunked, input, max_piece)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                got,
                (body.to_vec(), trailers.clone(), used),
                "{name} max_piece={max_piece}"
            );
        }
    }
}

#[test]
fn chunked_errors() {
    let truncated = |received| {
        Err(Error::Truncated {
            expected: None,
            received,
        })
    };
    let cases: Vec<(&str, &[u8], Result<(), Error>)> = vec![
        (
            "overflow",
            b"8000000000000000\r\n",
            Err(Error::ChunkSizeOverflow),
        ),
        (
            "overflow u64",
            b"10000000000000000\r\n",
            Err(Error::ChunkSizeOverflow),
        ),
        (
            "huge",
            b"ffffffffffffffffffffffffffffffff\r\n",
            Err(Error::ChunkSizeOverflow),
        ),
        (
            "63 bits ok, then truncated",
            b"7fffffffffffffff\r\nab",
            truncated(2),
        ),
        (
            "not hex",
            b"g\r\n",
            Err(Error::InvalidChunkSize("g".into())),
        ),
        (
            "empty size",
            b"\r\n",
            Err(Error::InvalidChunkSize("".into())),
        ),
        (
            "leading space",
            b" 5\r\nhello\r\n0\r\n\r\n",
            Err(Error::InvalidChunkSize(" 5".into())),
        ),
        (
            "0x prefix",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            Err(Error::InvalidChunkSize("0x5".into())),
        ),
        (
            "negative",
            b"-5\r\n",
            Err(Error::InvalidChunkSize("-5".into())),
        ),
        (
            "junk after size",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            Err(Error::InvalidChunkSize("5 x".into())),
        ),
        (
            "missing terminator",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            Err(Error::MissingChunkTerminator),
        ),
        (
            "data longer than size",
            b"3\r\nhello\r\n0\r\n\r\n",
            Err(Error::MissingChunkTerminator),
        ),
        (
            "terminator with spaces",
            b"5\r\nhello \r\n0\r\n\r\n",
            Err(Error::MissingChunkTerminator),
        ),
        ("missing last chunk", b"5\r\nhello\r\n", truncated(5)),
        ("eof in data", b"5\r\nhel", truncated(3)),
        ("eof in size line", b"5", truncated(0)),
        ("eof before terminator", b"5\r\nhello", truncated(5)),
        ("eof in terminator", b"5\r\nhello\r", truncated(5)),
        ("eof in trailers", b"0\r\nX: y\r\n", truncated(0)),
        ("no input", b"", truncated(0)),
        (
            "bad trailer",
            b"0\r\nno colon\r\n\r\n",
            Err(Error::BadTrailer("no colon: \"no colon\"".into())),
        ),
        (
            "trailer space before colon",
            b"0\r\nX : y\r\n\r\n",
            Err(Error::BadTrailer(
                "whitespace before colon: \"X : y\"".into(),
            )),
        ),
        (
            "trailer nul",
            b"0\r\nX: \0\r\n\r\n",
            Err(Error::BadTrailer(
                "nul, cr or lf in field value: \"X: \\0\"".into(),
            )),
        ),
        (
            "trailer fold first",
            b"0\r\n folded\r\n\r\n",
            Err(Error::BadTrailer("no colon: \" folded\"".into())),
        ),
    ];
    for (name, input, want) in cases {
        for max_piece in [1, 3, 7, 1 << 16] {
            assert_eq!(
                decode_in_memory(Framing::Chunked, input, max_piece).map(|_| ()),
                want,
                "{name} max_piece={max_piece}"
            );
        }
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
                assert!(
                    (1..=max_piece).contains(&n),
                    "asked for {n} with max_piece {max_piece}"
                );
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

#[test]
fn length_bodies() {
    let cases: Vec<(u64, &[u8], u64, Result<(&[u8], usize), Error>)> = vec![
        (5, b"hello", 2, Ok((b"hello", 5))),
        (5, b"helloEXTRA", 3, Ok((b"hello", 5))),
        (0, b"ignored", 3, Ok((b"", 0))),
        (
            10,
            b"hell",
            3,
            Err(Error::Truncated {
                expected: Some(10),
                received: 4,
            }),
        ),
        (
            10,
            b"",
            3,
            Err(Error::Truncated {
                expected: Some(10),
                received: 0,
            }),
        ),
        (
            u64::MAX,
            b"abc",
            1 << 20,
            Err(Error::Truncated {
                expected: Some(u64::MAX),
                received: 3,
            }),
        ),
    ];
    for (len, input, max_piece, want) in cases {
        let got = decode_in_memory(Framing::Length(len), input, max_piece);
        assert_eq!(
            got,
            want.map(|(b, n)| (b.to_vec(), vec![], n)),
            "length {len} input {input:?}"
        );
    }
}

#[test]
fn close_delimited_and_none() {
    for max_piece in [0, 1, 4, 1 << 20] {
        let got = decode_in_memory(
            Framing::CloseDelimited,
            b"all of it\r\n0\r\n\r\n",
            max_piece,
        )
        .unwrap();
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
        (
            dec.received(),
            dec.expected(),
            dec.on_eof(),
            dec.next_step()
        ),
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

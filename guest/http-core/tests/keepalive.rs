//! Persistent connections: when a connection may carry the next request.

use wfetch_http_core::body::Framing;
use wfetch_http_core::keepalive::reusable;
use wfetch_http_core::request::{Request, UserHeader};
use wfetch_http_core::{Header, ResponseHead, Version};

fn head(version: Version, headers: &[(&str, &str)]) -> ResponseHead {
    ResponseHead {
        version,
        status: 200,
        reason: "OK".into(),
        headers: headers
            .iter()
            .map(|(n, v)| Header {
                name: n.to_string(),
                value: v.as_bytes().to_vec(),
            })
            .collect(),
    }
}

fn get() -> Request {
    Request {
        method: "GET".into(),
        url: "http://a.example/".into(),
        ..Default::default()
    }
}

#[test]
fn http11_with_length_or_chunked_is_reusable() {
    let h = head(Version::Http11, &[]);
    assert!(reusable(&get(), &h, Framing::Length(5)));
    assert!(reusable(&get(), &h, Framing::Chunked));
    assert!(reusable(&get(), &h, Framing::None));
}

#[test]
fn close_delimited_is_never_reusable() {
    assert!(!reusable(&get(), &head(Version::Http11, &[]), Framing::CloseDelimited));
}

#[test]
fn connection_close_in_any_case_or_list_is_honoured() {
    for v in ["close", "Close", "keep-alive, CLOSE", " upgrade ,close "] {
        let h = head(Version::Http11, &[("Connection", v)]);
        assert!(!reusable(&get(), &h, Framing::Length(1)), "{v}");
    }
}

#[test]
fn http10_response_needs_keep_alive() {
    assert!(!reusable(&get(), &head(Version::Http10, &[]), Framing::Length(1)));
    let h = head(Version::Http10, &[("Connection", "Keep-Alive")]);
    assert!(reusable(&get(), &h, Framing::Length(1)));
}

#[test]
fn our_http10_request_or_user_close_is_not_reusable() {
    let h = head(Version::Http11, &[]);
    let mut r = get();
    r.http10 = true;
    assert!(!reusable(&r, &h, Framing::Length(1)));
    let mut r = get();
    r.headers.push(UserHeader {
        name: "connection".into(),
        value: "close".into(),
        remove: false,
    });
    assert!(!reusable(&r, &h, Framing::Length(1)));
}

#[test]
fn switching_protocols_is_not_reusable() {
    let mut h = head(Version::Http11, &[]);
    h.status = 101;
    assert!(!reusable(&get(), &h, Framing::None));
}

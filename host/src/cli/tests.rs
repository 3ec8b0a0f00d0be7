//! Unit tests of the command line's parsing helpers.

use super::*;

#[test]
fn base64_matches_rfc4648_vectors() {
    for (i, o) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(i.as_bytes()), o);
    }
}

#[test]
fn resolve_entries_parse() {
    let m = parse_resolve(&["Example.test:443:127.0.0.1,[::1]".into()]).unwrap();
    assert_eq!(
        m[&("example.test".to_string(), 443)],
        vec!["127.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]
    );
    assert!(parse_resolve(&["nohost".into()]).is_err());
    assert!(parse_resolve(&["h:99999:1.2.3.4".into()]).is_err());
}

#[test]
fn data_flags_join_like_curl() {
    let flags = vec![
        (DataKind::Ascii, "a=1".to_string()),
        (DataKind::Binary, "b=2".to_string()),
        (DataKind::Raw, "@c".to_string()),
    ];
    assert_eq!(request_body(&flags).unwrap().unwrap(), b"a=1&b=2&@c");
    let json = vec![(DataKind::Json, "{}".to_string()), (DataKind::Json, "[]".to_string())];
    assert_eq!(request_body(&json).unwrap().unwrap(), b"{}[]");
}

#[test]
fn order_of_outputs_and_data_is_kept() {
    let args = Args::parse_ordered(["wfetch", "-O", "-o", "b", "--data-binary", "x", "-d", "y", "u1", "u2"]);
    assert_eq!(args.outputs(), vec![None, Some(PathBuf::from("b"))]);
    assert_eq!(
        args.data_flags(),
        vec![(DataKind::Binary, "x".to_string()), (DataKind::Ascii, "y".to_string())]
    );
}

#[test]
fn header_forms() {
    let h = parse_header("X-Empty;").unwrap();
    assert_eq!((h.name.as_str(), h.value.as_str(), h.remove), ("X-Empty", "", false));
    let h = parse_header("Accept:").unwrap();
    assert!(h.remove);
    assert!(parse_header("nocolon").is_err());
}

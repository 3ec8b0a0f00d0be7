//! Response heads: parsing never panics, a complete head is never longer
//! than its input, and no prefix of it is complete.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wfetch_http_core::{body, head};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((parsed, used))) = head::parse_response_head(data) {
        assert!(used <= data.len());
        assert!((100..=999).contains(&parsed.status));
        assert!(parsed.headers.len() <= head::MAX_HEADERS);
        let prefix = data.get(..used - 1).unwrap_or_default();
        assert!(!matches!(head::parse_response_head(prefix), Ok(Some(_))));
        // Parsing the head again from its own bytes gives the same head.
        let again = head::parse_response_head(data.get(..used).unwrap_or_default());
        assert_eq!(again, Ok(Some((parsed.clone(), used))));
        for method in ["GET", "HEAD"] {
            let _ = body::framing(method, &parsed);
        }
    }
    let _ = head::parse_header_line(data);
});

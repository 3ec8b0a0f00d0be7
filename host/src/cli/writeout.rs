//! curl's `-w/--write-out`: a format with `%{variable}`s, `%header{name}`,
//! `%%` and backslash escapes, expanded after each transfer.

use std::io::Write;
use std::time::Duration;

use crate::Header;

/// What a transfer reports to `-w`.
#[derive(Debug, Clone, Default)]
pub struct Info {
    pub http_code: u16,
    /// "1.1", "1.0", or "0" without a response.
    pub http_version: String,
    pub method: String,
    pub url_effective: String,
    pub num_redirects: usize,
    pub num_connects: u32,
    /// The final head's headers (for content_type and %header{}).
    pub headers: Vec<Header>,
    /// Body bytes of the final response as received (before decoding).
    pub size_download: u64,
    /// Bytes of every response head received (interim and redirects too).
    pub size_header: u64,
    /// Bytes of every request sent (heads and bodies).
    pub size_request: u64,
    /// Request body bytes sent.
    pub size_upload: u64,
    pub time_namelookup: Duration,
    pub time_connect: Duration,
    pub time_appconnect: Duration,
    pub time_pretransfer: Duration,
    pub time_starttransfer: Duration,
    pub time_redirect: Duration,
    pub time_total: Duration,
    pub exitcode: u8,
    pub errormsg: String,
    pub remote_ip: String,
    pub remote_port: String,
    pub local_ip: String,
    pub local_port: String,
    /// The -o/-O file, empty for stdout.
    pub filename_effective: String,
    /// The Location of a redirect that was not followed, resolved.
    pub redirect_url: String,
}

impl Info {
    fn header(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    fn variable(&self, name: &str) -> Option<String> {
        let secs = |d: Duration| format!("{:.6}", d.as_secs_f64());
        Some(match name {
            "http_code" | "response_code" => format!("{:03}", self.http_code),
            "http_version" => self.http_version.clone(),
            "method" => self.method.clone(),
            "url_effective" | "url" => self.url_effective.clone(),
            "num_redirects" => self.num_redirects.to_string(),
            "num_connects" => self.num_connects.to_string(),
            "content_type" => self.header("content-type").unwrap_or_default(),
            "size_download" => self.size_download.to_string(),
            "size_header" => self.size_header.to_string(),
            "size_request" => self.size_request.to_string(),
            "size_upload" => self.size_upload.to_string(),
            "speed_download" => self.speed_download().to_string(),
            "time_namelookup" => secs(self.time_namelookup),
            "time_connect" => secs(self.time_connect),
            "time_appconnect" => secs(self.time_appconnect),
            "time_pretransfer" => secs(self.time_pretransfer),
            "time_starttransfer" => secs(self.time_starttransfer),
            "time_redirect" => secs(self.time_redirect),
            "time_total" => secs(self.time_total),
            "exitcode" => self.exitcode.to_string(),
            "errormsg" => self.errormsg.clone(),
            "remote_ip" => self.remote_ip.clone(),
            "remote_port" => self.remote_port.clone(),
            "local_ip" => self.local_ip.clone(),
            "local_port" => self.local_port.clone(),
            "scheme" => self
                .url_effective
                .split_once("://")
                .map(|(s, _)| s.to_ascii_uppercase())
                .unwrap_or_default(),
            "filename_effective" => self.filename_effective.clone(),
            "redirect_url" => self.redirect_url.clone(),
            "num_headers" => self.headers.len().to_string(),
            "json" => self.json().to_string(),
            "header_json" => self.header_json().to_string(),
            _ => return None,
        })
    }

    /// Body bytes per second over the whole transfer.
    fn speed_download(&self) -> u64 {
        let t = self.time_total.as_secs_f64();
        if t > 0.0 {
            (self.size_download as f64 / t) as u64
        } else {
            0
        }
    }

    /// `%{json}`: every variable in one JSON object, as curl writes it:
    /// codes, sizes, counts and ports as numbers, times as seconds, an
    /// empty string (no file, no message, no redirect) as null.
    fn json(&self) -> serde_json::Value {
        use serde_json::{json, Value};
        let secs = |d: Duration| json!(d.as_secs_f64());
        let text = |s: &str| {
            if s.is_empty() {
                Value::Null
            } else {
                json!(s)
            }
        };
        let port = |p: &str| p.parse::<u16>().map_or(json!(0), |p| json!(p));
        json!({
            "content_type": self.header("content-type"),
            "errormsg": text(&self.errormsg),
            "exitcode": self.exitcode,
            "filename_effective": text(&self.filename_effective),
            "ftp_entry_path": Value::Null,
            "http_code": self.http_code,
            "http_connect": 0,
            "http_version": self.http_version,
            "local_ip": text(&self.local_ip),
            "local_port": port(&self.local_port),
            "method": self.method,
            "num_connects": self.num_connects,
            "num_headers": self.headers.len(),
            "num_redirects": self.num_redirects,
            "proxy_ssl_verify_result": 0,
            "redirect_url": text(&self.redirect_url),
            "remote_ip": text(&self.remote_ip),
            "remote_port": port(&self.remote_port),
            "response_code": self.http_code,
            "scheme": self.variable("scheme").unwrap_or_default(),
            "size_download": self.size_download,
            "size_header": self.size_header,
            "size_request": self.size_request,
            "size_upload": self.size_upload,
            "speed_download": self.speed_download(),
            "speed_upload": 0,
            // A response over TLS means the certificate was verified (or
            // -k asked not to): 0, X509_V_OK.
            "ssl_verify_result": 0,
            "time_appconnect": secs(self.time_appconnect),
            "time_connect": secs(self.time_connect),
            "time_namelookup": secs(self.time_namelookup),
            "time_pretransfer": secs(self.time_pretransfer),
            "time_redirect": secs(self.time_redirect),
            "time_starttransfer": secs(self.time_starttransfer),
            "time_total": secs(self.time_total),
            "url": self.url_effective,
            "url_effective": self.url_effective,
            "wfetch_version": env!("CARGO_PKG_VERSION"),
        })
    }

    /// `%{header_json}`: the final response's headers as an object of
    /// lower-case names, each with the list of its values in order.
    fn header_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for h in &self.headers {
            let value = serde_json::Value::String(String::from_utf8_lossy(&h.value).into_owned());
            match map
                .entry(h.name.to_ascii_lowercase())
                .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            {
                serde_json::Value::Array(values) => values.push(value),
                _ => unreachable!("every entry is an array"),
            }
        }
        serde_json::Value::Object(map)
    }
}

/// Where a piece of the expansion goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Expand `format` for `info` into pieces per stream; unknown variables
/// are reported in `warnings` (curl prints them and goes on).
pub fn expand(format: &str, info: &Info, warnings: &mut Vec<String>) -> Vec<(Stream, Vec<u8>)> {
    let mut out: Vec<(Stream, Vec<u8>)> = vec![(Stream::Stdout, Vec::new())];
    let push = |out: &mut Vec<(Stream, Vec<u8>)>, s: &str| {
        if let Some(last) = out.last_mut() {
            last.1.extend_from_slice(s.as_bytes());
        }
    };
    let mut rest = format;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("%%") {
            push(&mut out, "%");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("%{") {
            match after.split_once('}') {
                Some((name, tail)) => {
                    match name {
                        "stdout" => out.push((Stream::Stdout, Vec::new())),
                        "stderr" => out.push((Stream::Stderr, Vec::new())),
                        _ => match info.variable(name) {
                            Some(v) => push(&mut out, &v),
                            None => warnings.push(format!("unknown --write-out variable: '{name}'")),
                        },
                    }
                    rest = tail;
                }
                None => {
                    push(&mut out, "%{");
                    rest = after;
                }
            }
        } else if let Some(after) = rest.strip_prefix("%header{") {
            match after.split_once('}') {
                Some((name, tail)) => {
                    push(&mut out, &info.header(name).unwrap_or_default());
                    rest = tail;
                }
                None => {
                    push(&mut out, "%header{");
                    rest = after;
                }
            }
        } else if let Some(after) = rest.strip_prefix('\\') {
            let (s, n) = match after.chars().next() {
                Some('n') => ("\n", 1),
                Some('r') => ("\r", 1),
                Some('t') => ("\t", 1),
                Some('\\') => ("\\", 1),
                _ => ("\\", 0),
            };
            push(&mut out, s);
            rest = &after[n..];
        } else {
            push(&mut out, &rest[..c.len_utf8()]);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Expand and write (stdout or stderr as the format switches), warnings on stderr.
pub fn write(format: &str, info: &Info) {
    let mut warnings = Vec::new();
    let pieces = expand(format, info, &mut warnings);
    for w in warnings {
        eprintln!("wfetch: {w}");
    }
    for (stream, bytes) in pieces {
        let _ = match stream {
            Stream::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(&bytes).and_then(|()| o.flush())
            }
            Stream::Stderr => std::io::stderr().lock().write_all(&bytes),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> Info {
        Info {
            http_code: 200,
            url_effective: "http://a.example/x".into(),
            size_download: 42,
            headers: vec![Header {
                name: "Content-Type".into(),
                value: b"text/html".to_vec(),
            }],
            time_total: Duration::from_micros(1_500_000),
            ..Info::default()
        }
    }

    fn stdout_of(format: &str) -> String {
        let mut w = Vec::new();
        let pieces = expand(format, &info(), &mut w);
        String::from_utf8(
            pieces
                .into_iter()
                .filter(|p| p.0 == Stream::Stdout)
                .flat_map(|p| p.1)
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn variables_escapes_and_percent() {
        assert_eq!(
            stdout_of("%{http_code} %{size_download} %{content_type} %{time_total}\\n100%%\\t%{url_effective}"),
            "200 42 text/html 1.500000\n100%\thttp://a.example/x"
        );
    }

    #[test]
    fn http_code_without_a_response_is_000() {
        let mut w = Vec::new();
        let p = expand("%{http_code}", &Info::default(), &mut w);
        assert_eq!(p[0].1, b"000");
    }

    #[test]
    fn unknown_variables_warn_and_expand_to_nothing() {
        let mut w = Vec::new();
        let p = expand("a%{nope}b", &info(), &mut w);
        assert_eq!(p[0].1, b"ab");
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn header_and_stream_switch() {
        let mut w = Vec::new();
        let p = expand("%header{content-type}%{stderr}e%{stdout}o", &info(), &mut w);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], (Stream::Stdout, b"text/html".to_vec()));
        assert_eq!(p[1], (Stream::Stderr, b"e".to_vec()));
        assert_eq!(p[2], (Stream::Stdout, b"o".to_vec()));
    }

    #[test]
    fn json_has_every_variable_with_curl_types() {
        let v: serde_json::Value = serde_json::from_str(&stdout_of("%{json}")).unwrap();
        assert_eq!(v["http_code"], 200);
        assert_eq!(v["response_code"], 200);
        assert_eq!(v["size_download"], 42);
        assert_eq!(v["content_type"], "text/html");
        assert_eq!(v["url_effective"], "http://a.example/x");
        assert_eq!(v["scheme"], "HTTP");
        assert_eq!(v["time_total"], 1.5);
        assert_eq!(v["speed_download"], 28);
        assert_eq!(v["num_headers"], 1);
        assert!(v["errormsg"].is_null(), "no message is null: {v}");
        assert!(v["filename_effective"].is_null(), "stdout is null: {v}");
        assert_eq!(v["remote_port"], 0);
    }

    #[test]
    fn header_json_groups_values_by_lower_case_name() {
        let mut i = info();
        i.headers.push(Header {
            name: "Set-Cookie".into(),
            value: b"a=1".to_vec(),
        });
        i.headers.push(Header {
            name: "set-cookie".into(),
            value: b"b=2".to_vec(),
        });
        let mut w = Vec::new();
        let p = expand("%{header_json}", &i, &mut w);
        let v: serde_json::Value = serde_json::from_slice(&p[0].1).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"content-type": ["text/html"], "set-cookie": ["a=1", "b=2"]})
        );
    }

    #[test]
    fn unterminated_braces_are_literal() {
        assert_eq!(stdout_of("%{http_code"), "%{http_code");
        assert_eq!(stdout_of("x\\"), "x\\");
    }
}

//! A real nginx (Debian's package) started once per test run on
//! 127.0.0.1, HTTP and HTTPS, with a generated config and document root.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::certs::certs;

pub struct Nginx {
    _dir: tempfile::TempDir,
    /// The document root.
    pub www: PathBuf,
    pub http_port: u16,
    pub https_port: u16,
    /// A shell that kills nginx when our stdin closes (when the test
    /// process exits, however it exits).
    _watchdog: Mutex<Child>,
}

impl Nginx {
    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }
    pub fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_port)
    }
    pub fn file(&self, path: &str) -> Vec<u8> {
        super::read(&self.www.join(path.trim_start_matches('/')))
    }
}

fn nginx_binary() -> String {
    for p in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if std::path::Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!("nginx is not installed: run `apt-get install nginx-light` (the Makefile's `make deps` does)");
}

/// The nginx for this test run, started on first use.
pub fn nginx() -> &'static Nginx {
    static NGINX: OnceLock<Nginx> = OnceLock::new();
    NGINX.get_or_init(start)
}

fn start() -> Nginx {
    let certs = certs();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let www = root.join("www");
    std::fs::create_dir_all(www.join("chunked")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::write(www.join("big.bin"), super::pseudo_random(6 * 1024 * 1024 + 123, 42)).unwrap();
    std::fs::write(www.join("empty.bin"), b"").unwrap();
    std::fs::write(www.join("index.html"), b"<html><body>hello from nginx</body></html>\n").unwrap();
    let text: String = (0..20_000).map(|i| format!("line {i} of a chunked body\n")).collect();
    std::fs::write(www.join("chunked/text.txt"), text).unwrap();

    let (http_port, https_port) = (super::free_port(), super::free_port());
    let tmp = root.join("tmp");
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
error_log {root}/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    sendfile on;
    server {{
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {www};
        location /chunked/ {{
            # sub_filter drops Content-Length: the body goes out chunked.
            sub_filter 'line' 'line';
            sub_filter_once off;
            sub_filter_types *;
        }}
        location = /redirect {{ return 302 /index.html; }}
        # Which connection and how many requests it carried (keep-alive).
        location = /conn {{ return 200 "$connection $connection_requests\n"; }}
        # A redirect loop (--max-redirs).
        location = /loop {{ return 302 /loop; }}
        # The document root again, gzip-encoded for clients that ask.
        location /gz/ {{
            alias {www}/;
            gzip on;
            gzip_types *;
            gzip_min_length 0;
        }}
    }}
}}
"#,
        root = root.display(),
        tmp = tmp.display(),
        www = www.display(),
        cert = certs.cert_pem.display(),
        key = certs.key_pem.display(),
    );
    let conf_path = root.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();

    let script = format!(
        "{nginx} -p {root} -c {conf} -e {root}/error.log & pid=$!; read _ignored; kill $pid; wait $pid; rm -rf {root}",
        nginx = nginx_binary(),
        root = root.display(),
        conf = conf_path.display()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx");
    // Keep stdin open for our lifetime: leak the handle on purpose.
    if let Some(stdin) = child.stdin.take() {
        let mut stdin = stdin;
        let _ = stdin.flush();
        std::mem::forget(stdin);
    }
    let started = Instant::now();
    for port in [http_port, https_port] {
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                let log = std::fs::read_to_string(root.join("error.log")).unwrap_or_default();
                panic!("nginx did not start on ports {http_port}/{https_port}: {log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Nginx {
        www,
        http_port,
        https_port,
        _dir: dir,
        _watchdog: Mutex::new(child),
    }
}

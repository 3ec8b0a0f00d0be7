//! Opening connections for guests: policy, name resolution (with
//! `--resolve` overrides), TCP connect and the TLS handshake, under the
//! connect timeout.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::policy::Policy;
use crate::streams::{ConnInfo, Connection, StreamError, Timeouts, TlsInfo};

/// Everything the host needs to open connections for a guest.
#[derive(Clone)]
pub struct NetConfig {
    /// The rustls client configuration for TLS connections.
    pub tls: crate::tls::ClientTls,
    /// What the guest may connect to.
    pub policy: Policy,
    /// `--resolve host:port:addr` overrides, keyed by (lower-case host, port).
    pub resolve: HashMap<(String, u16), Vec<IpAddr>>,
    /// Connect, idle and total timeouts for every connection.
    pub timeouts: Timeouts,
    /// `--record` / `--replay`: every connection goes through the tape.
    pub tape: Option<Arc<crate::tape::Tape>>,
}

/// TLS parameters the guest asked for.
#[derive(Debug, Clone)]
pub struct TlsRequest {
    /// The name for SNI and certificate verification.
    pub server_name: String,
    /// ALPN protocols to offer, in order of preference.
    pub alpn: Vec<String>,
}

/// Resolve, check and connect; then the TLS handshake if asked.
pub async fn connect(
    cfg: &NetConfig,
    host: &str,
    port: u16,
    tls: Option<TlsRequest>,
) -> Result<Connection, StreamError> {
    match &cfg.tape {
        None => connect_live(cfg, host, port, tls).await,
        Some(tape) => {
            // The policy decides on replay as it does live.
            cfg.policy.check_name(host, port).map_err(StreamError::Denied)?;
            let asked = tls.clone();
            tape.open(host, port, asked.as_ref(), connect_live(cfg, host, port, tls))
                .await
        }
    }
}

/// [`connect`] on the real network.
async fn connect_live(
    cfg: &NetConfig,
    host: &str,
    port: u16,
    tls: Option<TlsRequest>,
) -> Result<Connection, StreamError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(StreamError::InvalidArgument("empty host name".into()));
    }
    cfg.policy.check_name(host, port).map_err(StreamError::Denied)?;
    let deadline = {
        let d = tokio::time::Instant::now() + cfg.timeouts.connect;
        match cfg.timeouts.deadline {
            Some(t) if t < d => t,
            _ => d,
        }
    };
    let work = async {
        let addrs = resolve(cfg, host, port).await?;
        crate::pool::note_resolved();
        let tcp = dial(cfg, host, port, &addrs).await?;
        crate::pool::note_tcp_connected();
        let _ = tcp.set_nodelay(true);
        let peer = tcp.peer_addr().map_err(|e| StreamError::from_io(&e))?;
        let local = tcp.local_addr().map_err(|e| StreamError::from_io(&e))?;
        let socket = Some(std::os::fd::AsRawFd::as_raw_fd(&tcp));
        match tls {
            None => {
                let (r, w) = tcp.into_split();
                Ok(Connection {
                    read: Box::new(r),
                    write: Box::new(w),
                    info: Arc::new(ConnInfo { peer, local, tls: None }),
                    can_write_eof: true,
                    socket,
                })
            }
            Some(req) => {
                let name = crate::tls::server_name(&req.server_name)?;
                let mut config = (*cfg.tls.config()?).clone();
                config.alpn_protocols = req.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
                let stream = TlsConnector::from(Arc::new(config))
                    .connect(name, crate::readahead::ReadAhead::new(tcp))
                    .await
                    .map_err(|e| match StreamError::from_io(&e) {
                        t @ StreamError::Tls { .. } => t,
                        other => StreamError::Tls {
                            certificate: false,
                            message: other.to_string(),
                        },
                    })?;
                let (_, session) = stream.get_ref();
                let info = TlsInfo {
                    server_name: req.server_name.clone(),
                    peer_cert: session.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()),
                    suite: session
                        .negotiated_cipher_suite()
                        .map(|s| format!("{:?}", s.suite()))
                        .unwrap_or_default(),
                    protocol: session
                        .protocol_version()
                        .map(|v| match v {
                            tokio_rustls::rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
                            tokio_rustls::rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default(),
                    alpn: session.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
                };
                let (r, w) = tokio::io::split(stream);
                Ok(Connection {
                    read: Box::new(r),
                    write: Box::new(w),
                    info: Arc::new(ConnInfo {
                        peer,
                        local,
                        tls: Some(info),
                    }),
                    can_write_eof: false,
                    socket,
                })
            }
        }
    };
    match tokio::time::timeout_at(deadline, work).await {
        Ok(r) => r,
        Err(_) => Err(StreamError::TimedOut(format!(
            "Connection to {host} port {port} timed out after {} ms",
            cfg.timeouts.connect.as_millis()
        ))),
    }
}

async fn resolve(cfg: &NetConfig, host: &str, port: u16) -> Result<Vec<SocketAddr>, StreamError> {
    if let Some(ips) = cfg.resolve.get(&(host.to_ascii_lowercase(), port)) {
        return Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| StreamError::Dns(format!("Could not resolve host: {host} ({e})")))?
        .collect();
    if addrs.is_empty() {
        return Err(StreamError::Dns(format!("Could not resolve host: {host}")));
    }
    Ok(addrs)
}

/// Try each address in order; the policy sees the exact address dialled
/// (the one checked is the one connected to: no rebinding window). An
/// address the policy denies is skipped; when every address is denied,
/// the first denial is the error.
async fn dial(cfg: &NetConfig, host: &str, port: u16, addrs: &[SocketAddr]) -> Result<TcpStream, StreamError> {
    let mut last = None;
    let mut denied = None;
    for addr in addrs {
        if let Err(why) = cfg.policy.check_addr(host, port, addr.ip()) {
            tracing::debug!("policy: {why}");
            denied.get_or_insert(why);
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    if let (None, Some(why)) = (&last, denied) {
        return Err(StreamError::Denied(why));
    }
    let e = last.map(|e| (e.kind(), e.to_string()));
    Err(match e {
        Some((std::io::ErrorKind::ConnectionRefused, _)) => {
            StreamError::ConnectionRefused(format!("Failed to connect to {host} port {port}: Connection refused"))
        }
        Some((_, msg)) => StreamError::ConnectionRefused(format!("Failed to connect to {host} port {port}: {msg}")),
        None => StreamError::Dns(format!("Could not resolve host: {host}")),
    })
}

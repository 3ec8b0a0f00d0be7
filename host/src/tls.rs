//! TLS client configuration (rustls with ring): trust roots, `--cacert`,
//! `-k`, and turning TLS failures and certificates into stream values.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::streams::{PeerCertificate, StreamError};
use crate::Error;

/// How the host verifies servers.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Trust only the certificates in this PEM file (curl's `--cacert`)
    /// instead of the system's and webpki's roots.
    pub cacert: Option<PathBuf>,
    /// Skip certificate verification (curl's `-k`). The handshake's
    /// signatures are still checked.
    pub insecure: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The client configuration of a process, shared by its connections.
/// With `--cacert` or `-k` it is built at once (a bad file is reported
/// before anything is sent); with the default roots it is built on the
/// first TLS connection, because reading the system's certificates costs
/// milliseconds that a plain-HTTP run should not pay (curl defers them too).
#[derive(Clone)]
pub struct ClientTls(Arc<OnceLock<Result<Arc<ClientConfig>, String>>>);

impl ClientTls {
    /// The configuration, built now if it was deferred.
    pub fn config(&self) -> Result<Arc<ClientConfig>, StreamError> {
        self.0
            .get_or_init(|| build(None, false).map_err(|e| e.to_string()))
            .clone()
            .map_err(|message| StreamError::Tls {
                certificate: false,
                message,
            })
    }
}

/// The client configuration for these settings (see [`ClientTls`]).
pub fn client_config(settings: &TlsSettings) -> Result<ClientTls, Error> {
    let cell = OnceLock::new();
    if settings.insecure || settings.cacert.is_some() {
        let _ = cell.set(Ok(build(settings.cacert.as_deref(), settings.insecure)?));
    }
    Ok(ClientTls(Arc::new(cell)))
}

fn build(cacert: Option<&Path>, insecure: bool) -> Result<Arc<ClientConfig>, Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(format!("tls setup: {e}")))?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth()
    } else {
        let roots = match cacert {
            Some(path) => roots_from_pem(path)?,
            None => default_roots(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The system's roots plus webpki's Mozilla roots.
fn default_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Unreadable system certificates are skipped: webpki's roots remain.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    roots
}

fn roots_from_pem(path: &Path) -> Result<RootCertStore, Error> {
    use rustls::pki_types::pem::PemObject;
    let bad = |why: String| Error::CaCert {
        path: path.to_path_buf(),
        why,
    };
    let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&data) {
        let cert = cert.map_err(|e| bad(format!("bad PEM: {e}")))?;
        roots.add(cert).map_err(|e| bad(format!("bad certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificates found".into()));
    }
    Ok(roots)
}

/// Parse a server name for SNI and verification.
pub fn server_name(name: &str) -> Result<ServerName<'static>, StreamError> {
    let trimmed = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(trimmed.to_string())
        .map_err(|_| StreamError::InvalidArgument(format!("invalid TLS server name {name:?}")))
}

/// Tell certificate problems (curl's 60) from other handshake failures (35).
pub fn classify(err: &rustls::Error) -> StreamError {
    let certificate = matches!(
        err,
        rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::UnsupportedNameType
    );
    StreamError::Tls {
        certificate,
        message: err.to_string(),
    }
}

/// Decode the fields of a DER certificate that `peercert` reports.
pub fn describe_certificate(der: &[u8]) -> Option<PeerCertificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let validity = cert.validity();
    Some(PeerCertificate {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: rfc3339(validity.not_before.to_datetime()),
        not_after: rfc3339(validity.not_after.to_datetime()),
        der: der.to_vec(),
    })
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Accepts any certificate (curl's `-k`), while still checking that the
/// handshake signatures are made with the presented key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

//! A CA and a server certificate for localhost, 127.0.0.1 and ::1, made
//! once per test run with rcgen, written as PEM files.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

pub struct Certs {
    _dir: tempfile::TempDir,
    /// The CA certificate (PEM): pass to --cacert.
    pub ca_pem: PathBuf,
    /// The CA's key (PEM), for tests that sign more certificates.
    pub ca_key_pem: PathBuf,
    /// The CA itself, to sign more certificates with.
    pub ca_cert: rcgen::Certificate,
    pub ca_key: KeyPair,
    /// The server's certificate chain (PEM) and key (PEM), for nginx.
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

impl Certs {
    /// A rustls server config for the test servers, with these ALPN protocols.
    pub fn server_config(&self, alpn: &[&str]) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .expect("server config");
        cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(cfg)
    }
}

/// The certificates, made on first use.
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "wfetch test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .subject_alt_names
            .push(SanType::IpAddress("::1".parse().unwrap()));
        params.distinguished_name.push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();

        let ca_pem = dir.path().join("ca.pem");
        let ca_key_pem = dir.path().join("ca-key.pem");
        std::fs::write(&ca_key_pem, ca_key.serialize_pem()).unwrap();
        let cert_pem = dir.path().join("cert.pem");
        let key_pem = dir.path().join("key.pem");
        std::fs::write(&ca_pem, ca.pem()).unwrap();
        std::fs::write(&cert_pem, cert.pem()).unwrap();
        std::fs::write(&key_pem, key.serialize_pem()).unwrap();
        Certs {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            _dir: dir,
            ca_pem,
            ca_key_pem,
            ca_cert: ca,
            ca_key,
            cert_pem,
            key_pem,
        }
    })
}

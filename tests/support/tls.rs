//! A throw-away certificate authority for the HTTPS tests: a CA and a server
//! certificate for `127.0.0.1` and `localhost`, made afresh per test with
//! rcgen and written to a temporary directory for the proxies. reqwest
//! clients trust the CA; Chromium trusts the server key by its SPKI hash
//! (`--ignore-certificate-errors-spki-list`). It OWNS those throw-away keys;
//! it must NOT touch the system's trust store.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use reqwest::cookie::Jar;
use sha2::{Digest, Sha256};

use crate::support::process::TempDir;
use crate::support::proxies::TlsFiles;

pub(crate) struct TestCa {
    _dir: TempDir,
    /// The server's certificate (with the CA's after it) and key.
    pub(crate) files: TlsFiles,
    /// base64 of the SHA-256 of the server key's SubjectPublicKeyInfo.
    pub(crate) spki_sha256: String,
}

impl TestCa {
    pub(crate) fn new() -> TestCa {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "forward-auth throw-away test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca.self_signed(&ca_key).expect("a CA certificate");

        let server_key = KeyPair::generate().expect("a server key");
        let mut server =
            CertificateParams::new(vec!["localhost".to_string()]).expect("server parameters");
        server
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let server = server
            .signed_by(&server_key, &ca, &ca_key)
            .expect("a server certificate");

        let dir = TempDir::new("tls");
        let files = TlsFiles {
            cert: dir.path("server.crt"),
            key: dir.path("server.key"),
        };
        std::fs::write(&files.cert, server.pem() + &ca.pem()).unwrap();
        std::fs::write(&files.key, server_key.serialize_pem()).unwrap();
        let spki_sha256 = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(server_key.public_key_der()));
        TestCa {
            _dir: dir,
            files,
            spki_sha256,
        }
    }
}

/// A client that trusts the CA in `ca_pem`.
pub(crate) fn client_trusting(ca_pem: &str, jar: Option<Arc<Jar>>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("a PEM certificate");
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(jar) = jar {
        builder = builder.cookie_provider(jar);
    }
    builder.build().expect("an HTTPS client")
}

//! TLS for the Proxmox API: system roots (default), a CA file, or a pinned SHA-256 certificate
//! fingerprint (what `GET /nodes` shows as `ssl_fingerprint`). Insecure mode exists only behind an
//! explicit flag and logs a warning every time a client is built.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::error::PveError;
use crate::config::ClusterConfig;

/// Parse `AA:BB:…` (or plain hex) into 32 bytes.
pub fn parse_fingerprint(s: &str) -> Result<Vec<u8>, String> {
    let hex: String = s.chars().filter(|c| *c != ':' && !c.is_whitespace()).collect();
    if hex.len() != 64 {
        return Err(format!("fingerprint must be a SHA-256 (64 hex digits), got {} digits", hex.len()));
    }
    (0..32)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| "fingerprint is not hex".to_string()))
        .collect()
}

/// Accepts exactly the certificate whose SHA-256 matches; hostname and chain do not matter
/// (Proxmox clusters use self-signed certificates), the signature of the handshake does.
#[derive(Debug)]
struct Pinned {
    sha256: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        if got.as_ref() == self.sha256.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("server certificate does not match the pinned SHA-256 fingerprint".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Install the process-wide crypto provider (ring); harmless when already installed.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn configure(b: reqwest::ClientBuilder, cfg: &ClusterConfig) -> Result<reqwest::ClientBuilder, PveError> {
    install_provider();
    let bad = |m: String| PveError::Config(format!("cluster '{}': {m}", cfg.name));
    if let Some(fp) = &cfg.fingerprint {
        let sha256 = parse_fingerprint(fp).map_err(bad)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { sha256, provider }))
            .with_no_client_auth();
        return Ok(b.tls_backend_preconfigured(config));
    }
    if cfg.insecure {
        tracing::warn!(
            cluster = %cfg.name,
            "TLS verification is OFF for this cluster (insecure = true): anyone on the network path can impersonate it. Pin the certificate fingerprint instead."
        );
        return Ok(b.tls_danger_accept_invalid_certs(true));
    }
    if let Some(ca) = &cfg.ca_file {
        let pem = std::fs::read(ca).map_err(|e| bad(format!("cannot read ca_file {}: {e}", ca.display())))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(format!("ca_file {}: {e}", ca.display())))?;
        if certs.is_empty() {
            return Err(bad(format!("ca_file {} holds no certificate", ca.display())));
        }
        return Ok(b.tls_certs_only(certs));
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_proxmox_format() {
        let fp = "80:D4:F2:DF:64:95:CD:8D:A0:82:82:AC:48:BA:C0:7A:1B:6B:87:8B:FE:B9:83:1C:95:4E:79:58:77:99:69:F5";
        assert_eq!(parse_fingerprint(fp).expect("valid").len(), 32);
        assert!(parse_fingerprint("AB:CD").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    }
}

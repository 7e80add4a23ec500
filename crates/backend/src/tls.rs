//! TLS to an `https` backend (and to an OAuth2 token URL): the system's trusted roots plus
//! `auth.ca_file`, an optional client certificate (`auth.cert_file` / `auth.key_file`, for
//! mTLS), and `auth.insecure_skip_verify`. One rustls configuration serves the HTTP clients
//! (through reqwest) and the gRPC client (through our own connector).

use std::sync::Arc;

use meshtrace_config::{Auth, Credential};
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::BackendError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The client side of TLS as `auth` describes it. `alpn` is what the connection offers
/// (`h2` for gRPC; reqwest sets its own).
pub fn client_config(auth: &Auth, alpn: &[&[u8]]) -> Result<ClientConfig, BackendError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| BackendError::Config(format!("TLS cannot be set up: {e}")))?;
    let builder = if auth.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        builder.with_root_certificates(roots(&auth.ca_file)?)
    };
    let mut config = match client_identity(auth)? {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
            BackendError::Config(format!(
                "auth.cert_file and auth.key_file do not make a client identity: {e}"
            ))
        })?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The system's roots, and the certificates of `ca_file` when set.
fn roots(ca_file: &str) -> Result<rustls::RootCertStore, BackendError> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: a CA file may be all the user needs.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if !ca_file.is_empty() {
        let certs = CertificateDer::pem_file_iter(ca_file)
            .and_then(std::iter::Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| {
                BackendError::Config(format!("auth.ca_file `{ca_file}` cannot be read: {e}"))
            })?;
        if certs.is_empty() {
            return Err(BackendError::Config(format!(
                "auth.ca_file `{ca_file}` holds no PEM certificate"
            )));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                BackendError::Config(format!(
                    "auth.ca_file `{ca_file}` holds a certificate that cannot be used: {e}"
                ))
            })?;
        }
    }
    Ok(roots)
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The client certificate chain and key, when both are set (each a PEM file path or the PEM
/// itself).
fn client_identity(auth: &Auth) -> Result<Option<Identity>, BackendError> {
    match (auth.cert_file.is_empty(), auth.key_file.is_empty()) {
        (true, true) => return Ok(None),
        (false, true) | (true, false) => {
            return Err(BackendError::Config(
                "auth.cert_file and auth.key_file must be set together".to_string(),
            ));
        }
        (false, false) => {}
    }
    let pem = |credential: &Credential, key: &str| -> Result<String, BackendError> {
        credential
            .resolve()
            .map_err(|e| BackendError::Config(format!("auth.{key}: {e}")))
    };
    let chain = CertificateDer::pem_slice_iter(pem(&auth.cert_file, "cert_file")?.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BackendError::Config(format!("auth.cert_file is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(BackendError::Config(
            "auth.cert_file holds no PEM certificate".to_string(),
        ));
    }
    // The key's parse error is not shown: it could quote the key.
    let key = PrivateKeyDer::from_pem_slice(pem(&auth.key_file, "key_file")?.as_bytes())
        .map_err(|_| BackendError::Config("auth.key_file holds no PEM private key".to_string()))?;
    Ok(Some((chain, key)))
}

/// `insecure_skip_verify`: any certificate and name are accepted; handshake signatures are
/// still checked, so the session is encrypted, only not authenticated.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The HTTP client of a backend: reqwest with our TLS settings when `url` is https (reqwest's
/// own defaults otherwise).
pub fn http_client(auth: &Auth, url: &url::Url) -> Result<reqwest::Client, BackendError> {
    http_client_builder(auth, url)?
        .build()
        .map_err(|e| BackendError::Config(format!("the HTTP client cannot be built: {e}")))
}

/// The same, to be set up further.
///
/// Redirects are followed only within the origin (scheme, host and port) the request was sent
/// to: the configured credentials and custom headers go to the configured backend and nowhere
/// else. (reqwest drops `Authorization` on a redirect to another host, but not custom headers
/// such as an API key.) A redirect elsewhere is answered as it came, a 3xx, which the clients
/// report with the status.
pub fn http_client_builder(
    auth: &Auth,
    url: &url::Url,
) -> Result<reqwest::ClientBuilder, BackendError> {
    let builder = reqwest::Client::builder().redirect(same_origin_redirects());
    Ok(if url.scheme() == "https" {
        builder.tls_backend_preconfigured(client_config(auth, &[b"h2", b"http/1.1"])?)
    } else {
        builder
    })
}

/// At most `MAX_REDIRECTS` redirects, each to the origin of the first request.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    const MAX_REDIRECTS: usize = 5;
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same_origin || attempt.previous().len() > MAX_REDIRECTS {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// Connects gRPC channels over TLS: TCP to the URI's host and port, then a rustls handshake
/// offering `h2`, the server name taken from the URI.
#[derive(Clone)]
pub struct GrpcTlsConnector {
    tls: tokio_rustls::TlsConnector,
}

impl GrpcTlsConnector {
    pub fn new(auth: &Auth) -> Result<GrpcTlsConnector, BackendError> {
        let config = client_config(auth, &[b"h2"])?;
        Ok(GrpcTlsConnector {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Connecting = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<
                    hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
                    BoxError,
                >,
            > + Send,
    >,
>;

impl tower::Service<http::Uri> for GrpcTlsConnector {
    type Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let host = uri.host().ok_or("the gRPC address has no host")?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(host)?;
            let stream = tls.connect(name, tcp).await?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        })
    }
}

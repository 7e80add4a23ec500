//! The headers every backend request carries: the `Authorization` the auth settings ask for,
//! and `custom_headers`. Credentials are read when a request is made, so rotated secrets work;
//! an OAuth2 token is fetched with the client-credentials grant, kept until shortly before it
//! expires, then fetched again. Every secret sent is remembered in [`Secrets`], so that the
//! errors built from a backend's answers never show one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use meshtrace_config::{Auth, AuthType, Credential, OAuth2, OAuth2AuthStyle, TracingConfig};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::cause;
use crate::redact::Secrets;
use crate::{BackendError, Options};

/// What the headers of an external service (tracing, Prometheus) are made from: its `auth`, its
/// `custom_headers`, and the timeout of its requests (an OAuth2 token fetch gets the same).
#[derive(Debug, Clone, Copy)]
pub struct Service<'a> {
    pub auth: &'a Auth,
    pub custom_headers: &'a BTreeMap<String, String>,
    pub timeout: Duration,
}

impl<'a> Service<'a> {
    pub fn tracing(config: &'a TracingConfig) -> Service<'a> {
        Service {
            auth: &config.auth,
            custom_headers: &config.custom_headers,
            timeout: config.query_timeout(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Headers {
    kind: AuthType,
    username: Credential,
    password: Credential,
    token: Credential,
    /// `use_kiali_token`: the bearer token is this file's content.
    token_file: Option<PathBuf>,
    custom: Vec<(String, String)>,
    oauth2: Option<Arc<OAuth2Source>>,
    secrets: Secrets,
}

impl Headers {
    pub fn new(service: &Service, options: &Options) -> Result<Headers, BackendError> {
        let auth = service.auth;
        let secrets = Secrets::default();
        let oauth2 = match auth.kind {
            AuthType::OAuth2 => Some(Arc::new(OAuth2Source::new(service, secrets.clone())?)),
            _ => None,
        };
        // Known from the start, so that even an error before the first request hides them;
        // values read from files are added again each time they are read (rotation).
        for value in service.custom_headers.values() {
            secrets.add(value);
        }
        let resolved = |c: &Credential| c.resolve().unwrap_or_default();
        match auth.kind {
            AuthType::Basic => {
                secrets.add_basic(&resolved(&auth.username), &resolved(&auth.password));
            }
            AuthType::Bearer if !auth.use_kiali_token => secrets.add(&resolved(&auth.token)),
            _ => {}
        }
        Ok(Headers {
            secrets,
            oauth2,
            kind: auth.kind,
            username: auth.username.clone(),
            password: auth.password.clone(),
            token: auth.token.clone(),
            token_file: auth
                .use_kiali_token
                .then(|| options.service_account_token.clone()),
            custom: service
                .custom_headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The value of the `Authorization` header, if any, read now.
    pub async fn authorization(&self) -> Result<Option<String>, BackendError> {
        if let Some(oauth2) = &self.oauth2 {
            return Ok(Some(format!("Bearer {}", oauth2.token().await?)));
        }
        if let Some(file) = &self.token_file {
            let token = Credential::new(file.to_string_lossy()).resolve()?;
            self.secrets.add(&token);
            return Ok(Some(format!("Bearer {token}")));
        }
        Ok(match self.kind {
            AuthType::Basic => {
                let (user, password) = (self.username.resolve()?, self.password.resolve()?);
                self.secrets.add_basic(&user, &password);
                let pair = format!("{user}:{password}");
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            AuthType::Bearer => {
                let token = self.token.resolve()?;
                self.secrets.add(&token);
                Some(format!("Bearer {token}"))
            }
            AuthType::None | AuthType::OAuth2 => None,
        })
    }

    /// `request` with the `Authorization` header (read now) and the custom headers.
    pub async fn apply(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, BackendError> {
        if let Some(value) = self.authorization().await? {
            request = request.header("Authorization", value);
        }
        for (name, value) in &self.custom {
            request = request.header(name.as_str(), value.as_str());
        }
        Ok(request)
    }

    /// Every secret these headers have sent (or will send), to keep out of messages.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// `custom_headers`, names as written.
    pub fn custom(&self) -> &[(String, String)] {
        &self.custom
    }
}

/// Tokens from an OAuth2 token URL, client-credentials grant (RFC 6749 §4.4).
#[derive(Debug)]
struct OAuth2Source {
    http: reqwest::Client,
    settings: OAuth2,
    timeout: Duration,
    cached: Mutex<Option<(String, Instant)>>,
    secrets: Secrets,
}

/// A token is fetched again this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// How long a token without `expires_in` is kept.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl OAuth2Source {
    fn new(service: &Service, secrets: Secrets) -> Result<OAuth2Source, BackendError> {
        let settings = service.auth.oauth2.clone();
        if let Ok(secret) = settings.client_secret.resolve() {
            add_client_secret(&secrets, &settings.client_id, &secret);
        }
        let url = url::Url::parse(&settings.token_url).map_err(|e| {
            BackendError::Config(format!("auth.oauth2.token_url is not a valid URL: {e}"))
        })?;
        Ok(OAuth2Source {
            http: crate::tls::http_client(service.auth, &url)?,
            settings,
            timeout: service.timeout,
            cached: Mutex::new(None),
            secrets,
        })
    }

    /// The current token: the cached one while it is fresh, else a new one.
    async fn token(&self) -> Result<String, BackendError> {
        let mut cached = self.cached.lock().await;
        let now = Instant::now();
        if let Some((token, expires)) = &*cached
            && now.checked_add(EXPIRY_MARGIN).is_some_and(|t| t < *expires)
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        self.secrets.add(&token);
        // A lifetime too long for the clock is kept as long as a token without one.
        let expires = now
            .checked_add(lifetime)
            .or_else(|| now.checked_add(DEFAULT_LIFETIME))
            .unwrap_or(now);
        *cached = Some((token.clone(), expires));
        Ok(token)
    }

    async fn fetch(&self) -> Result<(String, Duration), BackendError> {
        let s = &self.settings;
        let shown = format!(
            "the OAuth2 token URL {}",
            meshtrace_config::redact_url(&s.token_url)
        );
        let secret = s.client_secret.resolve()?;
        add_client_secret(&self.secrets, &s.client_id, &secret);
        let mut form = vec![("grant_type", "client_credentials".to_string())];
        if !s.scopes.is_empty() {
            form.push(("scope", s.scopes.join(" ")));
        }
        if !s.audience.is_empty() {
            form.push(("audience", s.audience.clone()));
        }
        let mut request = self.http.post(&s.token_url).timeout(self.timeout);
        match s.auth_style {
            OAuth2AuthStyle::Header => {
                // RFC 6749 §2.3.1: both parts form-encoded before the Basic encoding.
                request = request.header(
                    "Authorization",
                    format!("Basic {}", client_pair(&s.client_id, &secret)),
                );
            }
            OAuth2AuthStyle::Params => {
                form.push(("client_id", s.client_id.clone()));
                form.push(("client_secret", secret));
            }
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = request
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    BackendError::Timeout {
                        backend: shown.clone(),
                        after: self.timeout,
                    }
                } else {
                    BackendError::Unreachable {
                        backend: shown.clone(),
                        reason: self.secrets.redact(&cause(&e)),
                    }
                }
            })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            // Token endpoints answer errors as JSON `error` / `error_description`; one behind
            // a gateway that echoes the request would show the client secret.
            return Err(BackendError::Status {
                backend: shown,
                status,
                body: self.secrets.excerpt(&bytes),
            });
        }
        // The body holds the token: its parse error is not shown.
        let parsed: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|_| BackendError::Decode {
                backend: shown.clone(),
                message: "the answer is not a JSON object with an access_token".to_string(),
            })?;
        if parsed.access_token.is_empty() {
            return Err(BackendError::Decode {
                backend: shown,
                message: "the access_token is empty".to_string(),
            });
        }
        let lifetime = parsed
            .expires_in
            .map_or(DEFAULT_LIFETIME, Duration::from_secs);
        Ok((parsed.access_token, lifetime))
    }
}

/// The Basic credentials of an OAuth2 client: both parts form-encoded before the Basic
/// encoding (RFC 6749 §2.3.1).
fn client_pair(client_id: &str, secret: &str) -> String {
    let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(client_id),
        encode(secret)
    ))
}

/// An OAuth2 client secret, and the header that carries it.
fn add_client_secret(secrets: &Secrets, client_id: &str, secret: &str) {
    if secret.is_empty() {
        return;
    }
    secrets.add(secret);
    secrets.add(&client_pair(client_id, secret));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(yaml: &str, options: &Options) -> Headers {
        let text = format!(
            "external_services:\n  tracing:\n    internal_url: http://j:16686\n    use_grpc: false\n{yaml}"
        );
        let loaded = meshtrace_config::load_str(&text).unwrap();
        Headers::new(&Service::tracing(&loaded.config.tracing), options).unwrap()
    }

    #[tokio::test]
    async fn basic_credentials_are_read_from_files_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "first\n").unwrap();
        let h = headers(
            &format!(
                "    auth:\n      type: basic\n      username: kiali\n      password: {}\n",
                password.display()
            ),
            &Options::default(),
        );
        let encoded = |pair: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        };
        assert_eq!(
            h.authorization().await.unwrap(),
            Some(encoded("kiali:first"))
        );
        std::fs::write(&password, "second").unwrap();
        assert_eq!(
            h.authorization().await.unwrap(),
            Some(encoded("kiali:second"))
        );
    }

    #[tokio::test]
    async fn bearer_and_service_account_tokens() {
        let h = headers(
            "    auth:\n      type: bearer\n      token: abc\n",
            &Options::default(),
        );
        assert_eq!(
            h.authorization().await.unwrap().as_deref(),
            Some("Bearer abc")
        );
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "sa-token\n").unwrap();
        let options = Options {
            service_account_token: token,
        };
        let h = headers(
            "    auth:\n      type: bearer\n      use_kiali_token: true\n",
            &options,
        );
        assert_eq!(
            h.authorization().await.unwrap().as_deref(),
            Some("Bearer sa-token")
        );
        let h = headers(
            "    custom_headers:\n      X-Scope-OrgID: t1\n",
            &Options::default(),
        );
        assert_eq!(h.authorization().await.unwrap(), None);
        assert_eq!(
            h.custom(),
            [("X-Scope-OrgID".to_string(), "t1".to_string())]
        );
    }

    #[tokio::test]
    async fn a_missing_credential_file_is_an_error_naming_the_file_only() {
        let h = headers(
            "    auth:\n      type: bearer\n      token: /no/such/token\n",
            &Options::default(),
        );
        let message = h.authorization().await.unwrap_err().to_string();
        assert_eq!(
            message,
            "cannot read a credential: cannot read the credential file `/no/such/token`: No such file or directory (os error 2)"
        );
    }
}

//! The headers every backend request carries: the `Authorization` the auth settings ask for,
//! and `custom_headers`. Credentials are read when a request is made, so rotated secrets work.

use std::path::PathBuf;

use base64::Engine as _;
use meshtrace_config::{AuthType, Credential, TracingConfig};

use crate::{BackendError, Options};

#[derive(Debug, Clone)]
pub struct Headers {
    kind: AuthType,
    username: Credential,
    password: Credential,
    token: Credential,
    /// `use_kiali_token`: the bearer token is this file's content.
    token_file: Option<PathBuf>,
    custom: Vec<(String, String)>,
}

impl Headers {
    pub fn new(config: &TracingConfig, options: &Options) -> Result<Headers, BackendError> {
        let auth = &config.auth;
        if auth.kind == AuthType::OAuth2 {
            return Err(BackendError::Config(
                "auth.type oauth2 is not available yet in this version of meshtrace".to_string(),
            ));
        }
        Ok(Headers {
            kind: auth.kind,
            username: auth.username.clone(),
            password: auth.password.clone(),
            token: auth.token.clone(),
            token_file: auth
                .use_kiali_token
                .then(|| options.service_account_token.clone()),
            custom: config
                .custom_headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The value of the `Authorization` header, if any, read now.
    pub fn authorization(&self) -> Result<Option<String>, BackendError> {
        if let Some(file) = &self.token_file {
            let token = Credential::new(file.to_string_lossy()).resolve()?;
            return Ok(Some(format!("Bearer {token}")));
        }
        Ok(match self.kind {
            AuthType::Basic => {
                let pair = format!("{}:{}", self.username.resolve()?, self.password.resolve()?);
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            AuthType::Bearer => Some(format!("Bearer {}", self.token.resolve()?)),
            AuthType::None | AuthType::OAuth2 => None,
        })
    }

    /// `custom_headers`, names as written.
    pub fn custom(&self) -> &[(String, String)] {
        &self.custom
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(yaml: &str, options: &Options) -> Headers {
        let text = format!(
            "external_services:\n  tracing:\n    internal_url: http://j:16686\n    use_grpc: false\n{yaml}"
        );
        let loaded = meshtrace_config::load_str(&text).unwrap();
        Headers::new(&loaded.config.tracing, options).unwrap()
    }

    #[test]
    fn basic_credentials_are_read_from_files_each_time() {
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
        assert_eq!(h.authorization().unwrap(), Some(encoded("kiali:first")));
        std::fs::write(&password, "second").unwrap();
        assert_eq!(h.authorization().unwrap(), Some(encoded("kiali:second")));
    }

    #[test]
    fn bearer_and_service_account_tokens() {
        let h = headers(
            "    auth:\n      type: bearer\n      token: abc\n",
            &Options::default(),
        );
        assert_eq!(h.authorization().unwrap().as_deref(), Some("Bearer abc"));
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
            h.authorization().unwrap().as_deref(),
            Some("Bearer sa-token")
        );
        let h = headers(
            "    custom_headers:\n      X-Scope-OrgID: t1\n",
            &Options::default(),
        );
        assert_eq!(h.authorization().unwrap(), None);
        assert_eq!(
            h.custom(),
            [("X-Scope-OrgID".to_string(), "t1".to_string())]
        );
    }

    #[test]
    fn a_missing_credential_file_is_an_error_naming_the_file_only() {
        let h = headers(
            "    auth:\n      type: bearer\n      token: /no/such/token\n",
            &Options::default(),
        );
        let message = h.authorization().unwrap_err().to_string();
        assert_eq!(
            message,
            "cannot read a credential: cannot read the credential file `/no/such/token`: No such file or directory (os error 2)"
        );
    }
}

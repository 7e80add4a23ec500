//! A real OpenID Connect provider for the login tests (node's `oidc-provider`, see
//! `tests/oidc/provider.mjs`), and a small browser made of reqwest and a cookie jar that logs in
//! through the provider's own login form.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, Response, StatusCode};

use meshtrace_console::ConsoleOptions;
use meshtrace_console::auth::AuthOptions;

pub const CLIENT_ID: &str = "meshtrace-console";
pub const CLIENT_SECRET: &str = "client-SECRET-never-shown";

/// A running provider; it stops when dropped.
pub struct OidcProvider {
    pub issuer: String,
    child: Child,
}

impl OidcProvider {
    /// Starts a provider whose one client may return to `redirect_uris`; ID tokens live
    /// `id_token_ttl` seconds.
    pub fn start(redirect_uris: &[String], id_token_ttl: u64) -> OidcProvider {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let module = root.join("../../target/tools/oidc/node_modules/oidc-provider/lib/index.js");
        assert!(
            module.exists(),
            "{} is missing: run ./scripts/test once (it installs oidc-provider with npm)",
            module.display()
        );
        let settings = serde_json::json!({
            "module": module,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": redirect_uris,
            "id_token_ttl": id_token_ttl,
        });
        let mut child = Command::new("node")
            .arg(root.join("tests/oidc/provider.mjs"))
            .arg(settings.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (scripts/test installs it)");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let issuer = line
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("the provider did not start: {line:?}"))
            .trim()
            .to_string();
        OidcProvider { issuer, child }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cookie as the console set it: its value and its attributes, as written.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub value: String,
    pub attributes: String,
}

/// reqwest without redirects and with a cookie jar per port: enough of a browser to walk a
/// login through the provider's forms.
pub struct Browser {
    client: reqwest::Client,
    /// (port, cookie name) → value.
    pub jar: BTreeMap<(u16, String), String>,
    /// Every cookie the console set, last value first seen by name.
    pub set_by: BTreeMap<String, SetCookie>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser {
            client: meshtrace_testkit::http::no_redirects(),
            jar: BTreeMap::new(),
            set_by: BTreeMap::new(),
        }
    }
}

impl Browser {
    /// The `Cookie` header the browser sends to the server on `port` (empty when it holds
    /// none of its cookies).
    pub fn cookies_for(&self, port: u16) -> String {
        let cookies: Vec<String> = self
            .jar
            .iter()
            .filter(|((p, _), _)| *p == port)
            .map(|((_, name), value)| format!("{name}={value}"))
            .collect();
        cookies.join("; ")
    }

    pub async fn request(
        &mut self,
        method: Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Response {
        let parsed = reqwest::Url::parse(url).unwrap();
        let port = parsed.port_or_known_default().unwrap();
        let cookies = self.cookies_for(port);
        let mut request = self.client.request(method, url);
        if !cookies.is_empty() {
            request = request.header(COOKIE, cookies);
        }
        if let Some(form) = form {
            let body: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = request.send().await.unwrap();
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let gone = value.is_empty() || attributes.to_ascii_lowercase().contains("max-age=0");
            if gone {
                self.jar.remove(&(port, name.to_string()));
            } else {
                self.jar.insert((port, name.to_string()), value.to_string());
            }
            self.set_by.insert(
                name.to_string(),
                SetCookie {
                    value: value.to_string(),
                    attributes: attributes.to_string(),
                },
            );
        }
        response
    }

    pub async fn get(&mut self, url: &str) -> Response {
        self.request(Method::GET, url, None).await
    }

    /// Walks from `start` through redirects and the provider's login form as `user`, until a
    /// page of `console` answers with something other than a redirect.
    pub async fn login(
        &mut self,
        console: SocketAddr,
        start: &str,
        user: &str,
    ) -> (String, Response) {
        let console_origin = format!("http://{console}");
        let mut url = start.to_string();
        for _ in 0..20 {
            let response = self.get(&url).await;
            if response.status().is_redirection() {
                url = absolute(&url, response.headers()[LOCATION].to_str().unwrap());
                continue;
            }
            if url.starts_with(&console_origin) {
                return (url, response);
            }
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            let page = response.text().await.unwrap();
            let action = form_action(&page).unwrap_or_else(|| panic!("no form at {url}: {page}"));
            let action = absolute(&url, &action);
            let form: Vec<(&str, &str)> = if page.contains("name=\"login\"") {
                vec![("prompt", "login"), ("login", user), ("password", "any")]
            } else {
                vec![("prompt", "consent")]
            };
            let response = self.request(Method::POST, &action, Some(&form)).await;
            assert!(
                response.status().is_redirection(),
                "{action}: {}",
                response.status()
            );
            url = absolute(&action, response.headers()[LOCATION].to_str().unwrap());
        }
        panic!("the login did not come back to the console");
    }

    /// Whether the browser holds the cookie `name` of the server on `port`.
    pub fn holds(&self, port: u16, name: &str) -> bool {
        self.jar.contains_key(&(port, name.to_string()))
    }

    /// Removes the cookies of a port whose name starts with `prefix`.
    pub fn forget(&mut self, port: u16, prefix: &str) {
        self.jar
            .retain(|(p, name), _| !(*p == port && name.starts_with(prefix)));
    }
}

pub fn absolute(base: &str, location: &str) -> String {
    reqwest::Url::parse(base)
        .unwrap()
        .join(location)
        .unwrap()
        .to_string()
}

fn form_action(page: &str) -> Option<String> {
    let start = page.find("action=\"")? + "action=\"".len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].replace("&amp;", "&"))
}

/// 32 bytes: AES-256-GCM.
pub const KEY: &str = "0123456789abcdef0123456789abcdef";

pub struct Setup {
    pub console: SocketAddr,
    pub provider: OidcProvider,
    _stop: tokio::sync::oneshot::Sender<()>,
    _secrets: tempfile::TempDir,
}

impl Setup {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.console)
    }
}

/// The same under `server.web_root`.
pub async fn setup_at(
    web_root: &str,
    extra: &str,
    id_token_ttl: u64,
    issuer: Option<&str>,
) -> Setup {
    let prefix = web_root.trim_end_matches('/');
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("oidc-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    let options = ConsoleOptions {
        background_inventory: false,
        auth: AuthOptions {
            oidc_secret_file: secret_file,
            ..AuthOptions::default()
        },
        ..ConsoleOptions::default()
    };
    let extra: String = extra.lines().map(|l| format!("    {l}\n")).collect();
    let mut provider = None;
    let (console, stop) = crate::common::start_console(options, |console| {
        // The provider first: its client may return only to this console's web root.
        let started = OidcProvider::start(&[format!("http://{console}{prefix}/")], id_token_ttl);
        let yaml = format!(
            "server:\n  web_root: {web_root}\nauth:\n  strategy: openid\n  openid:\n    issuer_uri: {}\n    client_id: {CLIENT_ID}\n    \
             disable_rbac: true\n    username_claim: email\n{extra}login_token:\n  signing_key: {KEY}\n",
            issuer.unwrap_or(&started.issuer)
        );
        provider = Some(started);
        yaml
    })
    .await;
    Setup {
        console,
        provider: provider.unwrap(),
        _stop: stop,
        _secrets: secrets,
    }
}

/// Where a page of the console sends the browser on to (its meta refresh), unescaped.
pub fn onward(page: &str) -> String {
    page.split("content=\"0;url=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("not a page that sends the browser on: {page}"))
        .replace("&amp;", "&")
}

//! Headless Chromium for the tests: chromedriver on a free port (stopped with the Chromium it
//! started when the test ends, also when it failed) and one WebDriver session. Also used by
//! `tests/auth_browser.rs`.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};

/// A WebDriver session in headless Chromium, with the chromedriver it runs on (stopped on drop)
/// and its own profile directory.
pub struct Browser {
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// chromedriver, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    /// Stops chromedriver and the Chromium it started (its own process group), also when a
    /// test failed before closing the session.
    fn drop(&mut self) {
        // `--` so that the negative process-group ID is not read as an option.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's Chromium, where its package puts it.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Fails, naming the Debian package, when a program the browser tests need is not installed.
fn require_installed() {
    if !std::path::Path::new(CHROMIUM).exists() {
        panic!(
            "Chromium is not installed ({CHROMIUM} is missing): install Debian's package \
             `chromium` (`apt-get install chromium`; ./scripts/test installs it)"
        );
    }
}

pub async fn browser() -> Browser {
    require_installed();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start chromedriver ({e}): install Debian's package `chromium-driver` \
                 (`apt-get install chromium-driver`; ./scripts/test installs it)"
            )
        });
    let driver = Driver { child, port };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", driver.port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                // No name resolves but loopback: a page that refers to another host (an
                // OpenID provider's login page importing web fonts) sends nothing off the machine.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session starts");
    Browser {
        client,
        _driver: driver,
        _profile: profile,
    }
}

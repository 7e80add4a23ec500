//! A real Prometheus (Debian's `prometheus` package) started on a loopback port over TSDB
//! blocks made from OpenMetrics text with `promtool tsdb create-blocks-from openmetrics`, or
//! scraping targets on this machine; Istio's default histogram bounds, as the tests' reference.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of `program`, or a failure telling how to install it: a missing reference must
/// fail the test, never skip it.
pub fn require(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` is not installed: these tests compare with a real Prometheus. \
             Run ./scripts/test, which installs Debian's `prometheus` package (prometheus and \
             promtool)."
        )
    })
}

/// `promtool check metrics` over `text` (a scrape's body): its exit code (0 clean, 3 lint notes
/// only, 1 unparsable) and the lines it printed, sorted.
pub fn promtool_check_metrics(text: &str) -> (Option<i32>, Vec<String>) {
    use std::io::Write as _;
    let mut child = Command::new(require("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let printed =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let mut lines: Vec<String> = printed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    lines.sort();
    (out.status.code(), lines)
}

/// `(major, minor)` of the installed Prometheus, from `prometheus --version`.
pub fn prometheus_version() -> (u32, u32) {
    let out = Command::new(require("prometheus"))
        .arg("--version")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let version = text
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .unwrap_or_else(|| panic!("no version in {text:?}"));
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let major = parts.next().unwrap().parse().unwrap();
    let minor = parts.next().unwrap().parse().unwrap();
    (major, minor)
}

/// A Prometheus server over TSDB blocks made from OpenMetrics text; killed when dropped.
pub struct RealPrometheus {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl RealPrometheus {
    pub async fn start(openmetrics: &str) -> RealPrometheus {
        let promtool = require("promtool");
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("samples.om");
        std::fs::write(&input, openmetrics).unwrap();
        let data = dir.path().join("data");
        let made = Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&input)
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "promtool failed: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        // No scrape targets: the server only answers queries over the imported blocks.
        RealPrometheus::launch(dir, "global:\n  scrape_interval: 15s\n").await
    }

    /// A Prometheus scraping `targets` (`host:port`, loopback) at `/metrics` every
    /// `interval_s` seconds, in one job named `job`.
    pub async fn scraping(job: &str, targets: &[&str], interval_s: u32) -> RealPrometheus {
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: {interval_s}s\n  scrape_timeout: {interval_s}s\n\
             scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        RealPrometheus::launch(dir, &config).await
    }

    async fn launch(dir: tempfile::TempDir, config_text: &str) -> RealPrometheus {
        let prometheus = require("prometheus");
        let data = dir.path().join("data");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_text).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={addr}"))
            // Retention counts back from the newest block; the imported samples are years old
            // and must all stay.
            .arg("--storage.tsdb.retention.time=100y")
            .arg("--query.lookback-delta=5m")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = RealPrometheus { addr, child, dir };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("prometheus exited ({status}): {}", self.log());
            }
            let ready = client
                .get(format!("http://{}/-/ready", self.addr))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "prometheus was not ready within 2 minutes: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for RealPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Envoy's default histogram bounds, which Istio keeps for durations (ms) and sizes (bytes):
/// written out here as the tests' reference, apart from the code under test.
pub const ISTIO_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// The bucket `(lower, upper]` of [`ISTIO_BUCKETS`] that holds `v` (`upper` infinite past the
/// last bound).
pub fn istio_bucket(v: f64) -> (f64, f64) {
    let mut lower = 0.0;
    for upper in ISTIO_BUCKETS {
        if v <= upper {
            return (lower, upper);
        }
        lower = upper;
    }
    (lower, f64::INFINITY)
}

//! The console's `/metrics` under hostile requests, over the wire (issue 13, defect 6): a real
//! console on a loopback port, raw TCP requests with random and huge methods and random paths,
//! then a scrape with reqwest. Label values must come from a closed set.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use meshtrace_console::ConsoleOptions;

#[allow(dead_code)]
mod common;

/// Sends one raw HTTP/1.1 request and reads the answer to its end.
fn raw(console: SocketAddr, method: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(console).unwrap();
    // Only so that a stuck console fails the test instead of hanging it.
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: {console}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_methods_and_paths_add_no_series() {
    let yaml = "external_services:\n  tracing:\n    enabled: false\n".to_string();
    let options = ConsoleOptions {
        background_inventory: false,
        ..ConsoleOptions::default()
    };
    let (c, _stop) = common::start_console(options, move |_| yaml).await;

    let sent = tokio::task::spawn_blocking(move || {
        // A fixed xorshift: random-looking tokens, the same on every run.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut sent = Vec::new();
        for i in 0..600 {
            let method = format!("M{:016X}", next());
            // Half on a route of the console (a template), half on random paths.
            let path = if i % 2 == 0 {
                "/api/tracing".to_string()
            } else {
                let path = format!("/p{:016x}", next());
                sent.push(path.clone());
                path
            };
            let answer = raw(c, &method, &path);
            assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
            sent.push(method);
        }
        for letter in ["Q", "R", "S"] {
            let method = letter.repeat(60_000);
            raw(c, &method, "/api/tracing");
            sent.push(method);
        }
        sent
    })
    .await
    .unwrap();

    let scrape = reqwest::get(format!("http://{c}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for token in &sent {
        assert!(
            !scrape.contains(token.as_str()),
            "/metrics holds the client's `{}`",
            token.chars().take(40).collect::<String>()
        );
    }
    let series = scrape.lines().filter(|l| !l.starts_with('#')).count();
    assert!(series < 100, "{series} series:\n{scrape}");
    let known = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "other",
    ];
    for line in scrape.lines() {
        if let Some(rest) = line.split("method=\"").nth(1) {
            let method = rest.split('"').next().unwrap();
            assert!(known.contains(&method), "{line}");
        }
    }
    assert!(
        scrape.contains("route=\"unmatched\",method=\"other\",status=\"405\"")
            || scrape.contains("route=\"/api/tracing\",method=\"other\",status=\"405\""),
        "{scrape}"
    );
}

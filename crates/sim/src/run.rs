//! Drives the simulator: requests at a steady rate (or a burst as fast as the target takes
//! them), batched and sent by a few workers, until the duration ends or a shutdown is asked for.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use meshtrace_model::Span;
use meshtrace_model::time::now_micros;
use tokio::sync::mpsc;

use crate::export::{Exporter, Target};
use crate::generate::Generator;
use crate::metrics::IstioMetrics;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Requests per second in steady mode.
    pub rate: f64,
    /// Stop after this long (steady mode); `None` runs until shutdown.
    pub duration: Option<Duration>,
    /// Send this many requests as fast as the target accepts them, then stop.
    pub burst: Option<usize>,
    /// Spans per batch.
    pub batch_size: usize,
    /// A partial batch is sent after this long.
    pub flush_every: Duration,
    /// Batches in flight at once.
    pub senders: usize,
    /// Count every request in these Istio metrics, as the proxies that report its spans would.
    pub metrics: Option<Arc<IstioMetrics>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            rate: 10.0,
            duration: None,
            burst: None,
            batch_size: 512,
            flush_every: Duration::from_millis(200),
            senders: 2,
            metrics: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicUsize,
    pub failed_requests: AtomicUsize,
    pub spans_sent: AtomicUsize,
    pub spans_rejected: AtomicUsize,
    pub spans_dropped: AtomicUsize,
}

impl Stats {
    /// The closing line: `requests 1200 (24 failed), spans sent 8400, spans rejected 0`.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "requests {} ({} failed), spans sent {}, spans rejected {}",
            self.requests.load(Ordering::Relaxed),
            self.failed_requests.load(Ordering::Relaxed),
            self.spans_sent.load(Ordering::Relaxed),
            self.spans_rejected.load(Ordering::Relaxed),
        );
        let dropped = self.spans_dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            line.push_str(&format!(", spans dropped {dropped} (target unreachable)"));
        }
        line
    }
}

/// Runs until done or until `shutdown` completes; what was generated is sent before returning.
pub async fn run(
    mut generator: Generator,
    target: Target,
    options: RunOptions,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()>,
) {
    let (batches_tx, batches_rx) = mpsc::channel::<Vec<Span>>(options.senders.max(1) * 2);
    let batches_rx = Arc::new(tokio::sync::Mutex::new(batches_rx));
    let mut senders = Vec::new();
    for _ in 0..options.senders.max(1) {
        let rx = batches_rx.clone();
        let stats = stats.clone();
        let mut exporter = Exporter::new(target.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let batch = rx.lock().await.recv().await;
                let Some(batch) = batch else { return };
                let sent = exporter.send(&batch).await;
                stats.spans_sent.fetch_add(sent.accepted, Ordering::Relaxed);
                stats
                    .spans_rejected
                    .fetch_add(sent.rejected, Ordering::Relaxed);
                stats
                    .spans_dropped
                    .fetch_add(sent.dropped, Ordering::Relaxed);
            }
        }));
    }

    let mut buffer: Vec<Span> = Vec::with_capacity(options.batch_size);
    let mut last_flush = Instant::now();
    let started = Instant::now();
    let mut made = 0usize;
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        let due = match (options.burst, options.duration) {
            (Some(total), _) => total.min(made + options.batch_size),
            (None, Some(limit)) if started.elapsed() >= limit => break,
            (None, _) => (started.elapsed().as_secs_f64() * options.rate) as usize,
        };
        while made < due {
            let request = generator.request(now_micros());
            made += 1;
            stats.requests.fetch_add(1, Ordering::Relaxed);
            if request.failed {
                stats.failed_requests.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(metrics) = &options.metrics {
                metrics.record(&request.reports);
            }
            buffer.extend(request.spans);
            if buffer.len() >= options.batch_size {
                let batch = std::mem::replace(&mut buffer, Vec::with_capacity(options.batch_size));
                if batches_tx.send(batch).await.is_err() {
                    break;
                }
                last_flush = Instant::now();
            }
        }
        if !buffer.is_empty() && last_flush.elapsed() >= options.flush_every {
            let _ = batches_tx.send(std::mem::take(&mut buffer)).await;
            last_flush = Instant::now();
        }
        if options.burst.is_some_and(|total| made >= total) {
            break;
        }
        if options.burst.is_none() {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut shutdown => break,
            }
        } else if futures_ready(&mut shutdown).await {
            break;
        }
    }
    if !buffer.is_empty() {
        let _ = batches_tx.send(buffer).await;
    }
    drop(batches_tx);
    for sender in senders {
        let _ = sender.await;
    }
}

/// True when the shutdown future has already completed (checked without waiting).
async fn futures_ready(shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>) -> bool {
    tokio::select! {
        biased;
        _ = shutdown.as_mut() => true,
        _ = std::future::ready(()) => false,
    }
}

//! Timing shared by the benchmarks.

// Each benchmark reads only the figures it reports.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Latency percentiles and mean of one measured path.
pub struct Stats {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub mean: Duration,
}

/// Runs `f` `warmup` times, then times `iterations` runs of it.
pub async fn measure<F: AsyncFnMut()>(warmup: usize, iterations: usize, mut f: F) -> Stats {
    for _ in 0..warmup {
        f().await;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        f().await;
        samples.push(start.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    Stats {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        mean,
    }
}

/// Minor page faults this thread has taken so far (`minflt` in
/// /proc/thread-self/stat): each one is a page the kernel mapped or copied on
/// first touch, which is where a fresh instance of a large guest spends much
/// of its time.
pub fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name.split_whitespace().nth(7).and_then(|f| f.parse().ok()).unwrap_or(0)
}

//! Per-component request metrics as CloudWatch embedded metric format
//! lines: on Lambda, a JSON line on stdout becomes metrics without any
//! API call. Off by default; the Lambda edge turns it on.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the metric lines on.
pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Records one request of `component`: its count, whether it failed (status
/// 500 and above) and how long it took.
pub(crate) fn record_request(component: &str, status: u16, duration_ms: f64) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let line = request_line(component, status, duration_ms, chrono::Utc::now().timestamp_millis());
    // One write per line, so concurrent lines never interleave.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn request_line(component: &str, status: u16, duration_ms: f64, timestamp_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "corral",
                "Dimensions": [["component"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Errors", "Unit": "Count"},
                    {"Name": "Duration", "Unit": "Milliseconds"}
                ]
            }]
        },
        "component": component,
        "Requests": 1,
        "Errors": u8::from(status >= 500),
        "Duration": duration_ms,
        "status": status
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_embedded_metric_format() {
        let line: serde_json::Value = serde_json::from_str(&request_line("students", 503, 12.5, 1_700_000_000_000)).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "corral");
        assert_eq!(directive["Dimensions"][0][0], "component");
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(
                line.get(metric["Name"].as_str().unwrap()).is_some(),
                "each metric has its value at the top level"
            );
        }
        assert_eq!(
            (line["component"].as_str(), line["Errors"].as_u64(), line["Duration"].as_f64()),
            (Some("students"), Some(1), Some(12.5))
        );
    }
}

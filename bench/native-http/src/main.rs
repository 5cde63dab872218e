//! The testbed component's `GET /testbed/{action}` answering `ping` with
//! `pong`, as a native axum server on the multi-threaded runtime: the
//! baseline `scripts/bench-http` drives with the same load as `corral serve`.
//!
//! Usage: `native-http ADDR`; prints `listening on http://ADDR` once bound.

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;

async fn testbed(Path(action): Path<String>) -> (StatusCode, &'static str) {
    match action.as_str() {
        "ping" => (StatusCode::OK, "pong"),
        _ => (StatusCode::NOT_FOUND, "no such action"),
    }
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("binding the address");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("a bound address")
    );
    let app = Router::new().route("/bench/testbed/{action}", get(testbed));
    axum::serve(listener, app).await.expect("serving");
}

//! Browser access from the manifest's `[cors]` table, and greedy `{name+}`
//! routes, through the app in process.

use crate::common;

use common::in_process::{InProcess, request};
use common::manifests::manifest;

#[tokio::test]
async fn preflights_are_answered_by_the_host_without_a_token() {
    let host = InProcess::start(&manifest("cors")).await;
    let reply = host
        .send(request(
            "OPTIONS",
            "/testbed/echo",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
        ))
        .await;
    assert_eq!(reply.status, 204, "{reply}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("GET, POST, OPTIONS")
    );
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("authorization, content-type")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("600"));

    // Another origin gets no grant; an unknown path is a 404.
    let other = host
        .send(request(
            "OPTIONS",
            "/testbed/echo",
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "POST"),
            ],
        ))
        .await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    let missing = host
        .send(request(
            "OPTIONS",
            "/nope",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "GET"),
            ],
        ))
        .await;
    missing.expect_error(404, "not_found");
}

#[tokio::test]
async fn responses_to_an_allowed_origin_carry_the_cors_headers() {
    let host = InProcess::start(&manifest("cors")).await;
    let token = host.token("alice", &[]);
    let bearer = format!("Bearer {token}");
    let reply = host
        .send(request(
            "GET",
            "/testbed/whoami",
            &[
                ("authorization", &bearer),
                ("origin", "https://app.example"),
            ],
        ))
        .await;
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    assert_eq!(reply.header("vary"), Some("origin"));
    // Errors too, so a browser script can read them.
    let denied = host
        .send(request(
            "GET",
            "/testbed/whoami",
            &[("origin", "https://app.example")],
        ))
        .await;
    denied.expect_error(401, "unauthorized");
    assert_eq!(
        denied.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    // No origin, no CORS headers.
    let plain = host
        .send(request(
            "GET",
            "/testbed/whoami",
            &[("authorization", &bearer)],
        ))
        .await;
    assert_eq!(plain.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn a_greedy_route_passes_the_rest_of_the_path() {
    let host = InProcess::start(&manifest("cors")).await;
    let reply = host.get("/deep/echo").await;
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(reply.json()["params"]["action"], "echo");
    assert_eq!(reply.json()["route"], "/deep/{action+}");
    // Several segments, decoded, land in one parameter.
    let deeper = host.get("/deep/a/b%20c/d").await;
    let message = deeper.expect_error(404, "not_found");
    assert!(message.contains("a/b c/d"), "{message}");
}

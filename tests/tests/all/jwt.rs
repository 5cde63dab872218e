//! The JWT matrix through the real binary, on both verifiers: the dev
//! verifier (HS256, the data directory's key) and the Cognito verifier
//! (RS256 against a JWKS this test serves). Every wrong token, and every
//! wrong form of the header, gets 401 with the error shape; a valid token
//! lacking the route's group gets 403; no refused token reaches the
//! component, which would answer 200.

use crate::common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::manifests::{manifest, resolve_wasm};
use common::{Backends, Host};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

const POOL_KEY: &[u8] = include_bytes!("../../fixtures/jwt/pool-key.der");
const POOL_PUBLIC_KEY: &str = include_str!("../../fixtures/jwt/pool-public.pem");
const OTHER_KEY: &[u8] = include_bytes!("../../fixtures/jwt/other-key.der");
const POOL_JWKS: &str = include_str!("../../fixtures/jwt/pool-jwks.json");
const POOL_KID: &str = "pool-key-1";
const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_matrix";
const CLIENT: &str = "matrix-client";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `claims` with each key of `changes` set, or removed when its value is null.
fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().expect("an object") {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn hs256(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn rs256(der: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der)).unwrap()
}

fn unsigned(claims: &Value, kid: Option<&str>) -> String {
    let mut header = json!({"alg": "none", "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// `GET path` with these `authorization` header values, in order.
async fn get_with(host: &Host, path: &str, authorization: &[&str]) -> common::Reply {
    let mut request = host.client().request(Method::GET, host.url(path));
    for value in authorization {
        request = request.header("authorization", *value);
    }
    host.send(request).await
}

/// Each token is refused with 401 on a caller route. On a public route it
/// never passes as a caller: the request is served as anonymous, as old
/// clients that always send a header expect.
async fn assert_all_refused(host: &Host, cases: &[(&str, String)]) {
    for (case, token) in cases {
        let header = format!("Bearer {token}");
        for path in ["/members/whoami", "/staff/whoami"] {
            let reply = get_with(host, path, &[&header]).await;
            assert_eq!(reply.status, 401, "{case} on {path}: {reply}");
            reply.expect_error(401, "unauthorized");
        }
        let open = get_with(host, "/open/whoami", &[&header]).await;
        assert_eq!(open.expect(200), Value::Null, "{case} on /open/whoami");
    }
}

/// What the header forms must do, given a valid token of a staff member.
async fn check_header_forms(host: &Host, staff: &str) {
    let whoami = get_with(host, "/members/whoami", &[&format!("Bearer {staff}")])
        .await
        .expect(200);
    assert_eq!(whoami["subject"], "u-staff", "{whoami}");
    // The scheme is case-insensitive (RFC 7235) and may be followed by
    // several spaces (RFC 6750, `"Bearer" 1*SP b64token`).
    for value in [
        format!("bearer {staff}"),
        format!("BEARER {staff}"),
        format!("Bearer  {staff}"),
    ] {
        let reply = get_with(host, "/members/whoami", &[&value])
            .await
            .expect(200);
        assert_eq!(reply["subject"], "u-staff", "{value}: {reply}");
    }
    let refused = [
        ("no scheme", vec![staff.to_owned()]),
        ("Basic", vec!["Basic dXNlcjpwYXNzd29yZA==".to_owned()]),
        ("Basic with the token", vec![format!("Basic {staff}")]),
        ("the scheme alone", vec!["Bearer".to_owned()]),
        ("the scheme and a space", vec!["Bearer ".to_owned()]),
        ("a tab for the space", vec![format!("Bearer\t{staff}")]),
        (
            "the token and more",
            vec![format!("Bearer {staff} {staff}")],
        ),
        (
            "a comma-joined pair",
            vec![format!("Bearer {staff}, Bearer {staff}")],
        ),
        (
            "two headers, both valid",
            vec![format!("Bearer {staff}"), format!("Bearer {staff}")],
        ),
        (
            "two headers, valid first",
            vec![format!("Bearer {staff}"), "Bearer garbage".to_owned()],
        ),
        (
            "two headers, valid second",
            vec!["Bearer garbage".to_owned(), format!("Bearer {staff}")],
        ),
        ("an empty header", vec![String::new()]),
    ];
    for (case, values) in &refused {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let reply = get_with(host, "/members/whoami", &values).await;
        assert_eq!(reply.status, 401, "{case}: {reply}");
        reply.expect_error(401, "unauthorized");
        // On a public route one header that is no valid bearer token leaves
        // the caller anonymous; two headers stay ambiguous and are refused.
        let open = get_with(host, "/open/whoami", &values).await;
        if values.len() > 1 {
            open.expect_error(401, "unauthorized");
        } else {
            assert_eq!(open.expect(200), Value::Null, "{case} on /open/whoami");
        }
    }
    // A header value that is not text is refused too, not dropped; on a
    // public route it leaves the caller anonymous.
    let raw = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
    for (path, status) in [("/members/whoami", 401), ("/open/whoami", 200)] {
        let reply = host
            .send(
                host.client()
                    .get(host.url(path))
                    .header("authorization", raw.clone()),
            )
            .await;
        assert_eq!(reply.status, status, "{path}: {reply}");
    }
}

/// Who may do what: 401 without a caller, 403 for a caller outside the
/// group, 200 inside it; public routes take anonymous callers.
async fn check_access(host: &Host, staff: &str, outsider: &str) {
    assert_eq!(host.get("/open/whoami").await.expect(200), Value::Null);
    host.get("/members/whoami")
        .await
        .expect_error(401, "unauthorized");
    host.get("/staff/whoami")
        .await
        .expect_error(401, "unauthorized");
    let reply = host.get_as("/staff/whoami", outsider).await;
    let message = reply.expect_error(403, "forbidden");
    assert!(message.contains("staff"), "{message}");
    assert_eq!(
        host.get_as("/members/whoami", outsider).await.expect(200)["subject"],
        "u-outsider"
    );
    assert_eq!(
        host.get_as("/staff/whoami", staff).await.expect(200)["subject"],
        "u-staff"
    );
    // The component's own group check gives 403 in the same shape.
    host.get_as("/members/require-group?group=admins", staff)
        .await
        .expect_error(403, "forbidden");
}

/// No refused request reached the component: the host logged each as
/// answered by itself, never as a component failure.
fn assert_no_component_failures(host: &Host) {
    let stderr = host.stderr();
    assert!(!stderr.contains("panicked"), "the host panicked:\n{stderr}");
    for line in host.logs() {
        assert_ne!(line["level"], "ERROR", "an error was logged: {line}");
    }
}

#[tokio::test]
async fn dev_tokens_in_every_wrong_form_are_refused() {
    let host = Host::start(&manifest("jwt"));
    let hex_key = std::fs::read_to_string(host.data_dir().join("dev-signing-key")).unwrap();
    let secret = hex::decode(hex_key.trim()).unwrap();
    let claims = |sub: &str, groups: &[&str]| json!({"sub": sub, "iss": "corral-dev", "iat": now(), "exp": now() + 600, "groups": groups});
    let good = claims("u-staff", &["staff"]);
    let staff = hs256(&secret, None, &good);
    let outsider = hs256(&secret, None, &claims("u-outsider", &["students"]));

    let cases = [
        (
            "expired",
            hs256(
                &secret,
                None,
                &with(good.clone(), json!({"exp": now() - 3600})),
            ),
        ),
        (
            "not yet valid",
            hs256(
                &secret,
                None,
                &with(good.clone(), json!({"nbf": now() + 3600})),
            ),
        ),
        (
            "no expiry",
            hs256(&secret, None, &with(good.clone(), json!({"exp": null}))),
        ),
        (
            "wrong issuer",
            hs256(
                &secret,
                None,
                &with(good.clone(), json!({"iss": "someone-else"})),
            ),
        ),
        ("wrong key", hs256(b"not-the-hosts-key", None, &good)),
        (
            "a token of another host",
            common::tokens::foreign_token("u-staff"),
        ),
        ("alg none", unsigned(&good, None)),
        (
            "RS256 instead of HS256",
            rs256(POOL_KEY, Some(POOL_KID), &good),
        ),
        (
            "no subject",
            hs256(&secret, None, &with(good.clone(), json!({"sub": null}))),
        ),
        (
            "an empty subject",
            hs256(&secret, None, &with(good.clone(), json!({"sub": ""}))),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];
    assert_all_refused(&host, &cases).await;
    check_header_forms(&host, &staff).await;
    check_access(&host, &staff, &outsider).await;
    // The corral CLI's own tokens carry the groups the same way.
    let cli = host.token("u-cli", &["staff"]);
    assert_eq!(
        host.get_as("/staff/whoami", &cli).await.expect(200)["subject"],
        "u-cli"
    );
    assert_no_component_failures(&host);
}

/// Serves the pool's JWKS on a thread of its own (the host fetches it while
/// the test thread waits for the host to start); returns its URL.
fn serve_jwks() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(format!(
                    "http://{}/jwks.json",
                    listener.local_addr().unwrap()
                ))
                .unwrap();
                let app = axum::Router::new().route(
                    "/jwks.json",
                    axum::routing::get(|| async {
                        ([("content-type", "application/json")], POOL_JWKS)
                    }),
                );
                axum::serve(listener, app).await.unwrap();
            });
    });
    rx.recv().unwrap()
}

#[tokio::test]
async fn cognito_tokens_in_every_wrong_form_are_refused() {
    let manifest = format!(
        "{}\n[backends.auth]\nkind = \"cognito\"\nissuer = \"{ISSUER}\"\nclients = [\"{CLIENT}\"]\njwks_url = \"{}\"\n",
        manifest("jwt"),
        serve_jwks()
    );
    let host = Host::start(&manifest);
    let id_claims = |sub: &str, groups: &[&str]| json!({"sub": sub, "iss": ISSUER, "aud": CLIENT, "token_use": "id", "iat": now(), "exp": now() + 600, "cognito:groups": groups});
    let good = id_claims("u-staff", &["staff"]);
    let access = json!({"sub": "u-staff", "iss": ISSUER, "client_id": CLIENT, "token_use": "access", "iat": now(), "exp": now() + 600, "cognito:groups": ["staff"]});
    let signed = |claims: &Value| rs256(POOL_KEY, Some(POOL_KID), claims);
    let staff = signed(&good);
    let outsider = signed(&id_claims("u-outsider", &[]));
    assert_eq!(
        host.get_as("/staff/whoami", &signed(&access))
            .await
            .expect(200)["subject"],
        "u-staff",
        "an access token of the pool's client is accepted"
    );

    let cases = [
        (
            "expired",
            signed(&with(good.clone(), json!({"exp": now() - 3600}))),
        ),
        (
            "not yet valid",
            signed(&with(good.clone(), json!({"nbf": now() + 3600}))),
        ),
        (
            "wrong issuer",
            signed(&with(
                good.clone(),
                json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/other"}),
            )),
        ),
        (
            "wrong audience",
            signed(&with(good.clone(), json!({"aud": "other-client"}))),
        ),
        (
            "wrong client id",
            signed(&with(access.clone(), json!({"client_id": "other-client"}))),
        ),
        (
            "no token_use",
            signed(&with(good.clone(), json!({"token_use": null}))),
        ),
        (
            "wrong key under the pool's key id",
            rs256(OTHER_KEY, Some(POOL_KID), &good),
        ),
        (
            "unknown key id",
            rs256(OTHER_KEY, Some("rotated-key"), &good),
        ),
        ("no key id", rs256(POOL_KEY, None, &good)),
        ("alg none", unsigned(&good, Some(POOL_KID))),
        (
            "HS256 signed with the pool's public key",
            hs256(POOL_PUBLIC_KEY.as_bytes(), Some(POOL_KID), &good),
        ),
        (
            "no subject",
            signed(&with(good.clone(), json!({"sub": null}))),
        ),
        ("a dev token", host.token("u-staff", &["staff"])),
    ];
    assert_all_refused(&host, &cases).await;
    check_header_forms(&host, &staff).await;
    check_access(&host, &staff, &outsider).await;
    assert_no_component_failures(&host);
}

/// Hosts given the same `signing_key` accept each other's development
/// tokens, as the many hosts behind one Lambda function must, each with its
/// own data directory. A host that keeps its own key refuses them, a host
/// given a key no longer accepts tokens of its data directory's key, and a
/// key too short to be safe is refused before anything is served.
#[tokio::test]
async fn hosts_given_one_signing_key_accept_the_same_tokens() {
    const KEY: &str = "a shared development signing key, 48 characters";
    let shared = format!(
        "{}\n[backends.auth]\nkind = \"dev\"\nsigning_key = \"${{env:CORRAL_TEST_SIGNING_KEY}}\"\n",
        manifest("jwt")
    );
    let env = [("CORRAL_TEST_SIGNING_KEY", KEY)];
    let first = Host::start_on_with_env(Backends::Embedded, &shared, &[], &env);
    let second = Host::start_on_with_env(Backends::Embedded, &shared, &[], &env);
    let separate = Host::start(&manifest("jwt"));

    let token = common::tokens::issue_token_with_key(KEY, "alice", &["staff"]);
    for host in [&first, &second] {
        let me = host.get_as("/staff/whoami", &token).await.expect(200);
        assert_eq!(
            (me["subject"].as_str(), me["groups"].clone()),
            (Some("alice"), json!(["staff"])),
            "{me}"
        );
    }
    separate
        .get_as("/members/whoami", &token)
        .await
        .expect_error(401, "unauthorized");
    let from_data_dir = first.token("bob", &[]);
    first
        .get_as("/members/whoami", &from_data_dir)
        .await
        .expect_error(401, "unauthorized");

    let short = std::process::Command::new(common::paths::corral_bin())
        .args(["token", "--sub", "alice", "--signing-key", "too short"])
        .output()
        .expect("running corral token");
    assert!(
        !short.status.success(),
        "corral token signed with a short key"
    );
    let message = String::from_utf8_lossy(&short.stderr);
    assert!(message.contains("at least 32 characters"), "{message}");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("corral.toml");
    std::fs::write(&manifest, resolve_wasm(&shared)).unwrap();
    let refused = std::process::Command::new(common::paths::corral_bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--artifact-dir")
        .arg(common::paths::artifact_dir())
        .env("CORRAL_TEST_SIGNING_KEY", "too short")
        .env_remove("CORRAL_BACKENDS")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running corral serve");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "the host served with a short signing key: {stderr}"
    );
    assert!(stderr.contains("at least 32 characters"), "{stderr}");
}

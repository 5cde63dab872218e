//! Every way a token can be wrong, against both verifiers: each is refused
//! as invalid (the host answers 401), and the well-formed token beside it
//! is accepted, so a refusal is never an accident of the test's own token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{AuthError, CognitoVerifier, DevKeys, Verifier};

const POOL_KEY: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/jwt/pool-key.der"));
const POOL_PUBLIC_KEY: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/jwt/pool-public.pem"));
const OTHER_KEY: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/jwt/other-key.der"));
const POOL_JWKS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/jwt/pool-jwks.json"));
const POOL_KID: &str = "pool-key-1";
const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_matrix";
const CLIENT: &str = "matrix-client";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `claims` with each key of `changes` set, or removed when its value is null.
fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().expect("an object") {
        if v.is_null() {
            claims.as_object_mut().expect("an object").remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn hs256(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn rs256(der: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der)).unwrap()
}

/// A token with `"alg": "none"` and no signature.
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

async fn assert_refused(verifier: &dyn Verifier, case: &str, token: &str) {
    match verifier.verify(token).await {
        Err(AuthError::Invalid(_)) => {}
        other => panic!("{case}: expected an invalid token, got {other:?}"),
    }
}

#[tokio::test]
async fn dev_tokens_are_refused_in_every_wrong_form() {
    let secret = b"matrix-secret".to_vec();
    let keys = DevKeys::from_secret(secret.clone());
    let good = json!({"sub": "alice", "iss": "corral-dev", "iat": now(), "exp": now() + 600, "groups": ["staff"]});
    let id = keys.verify(&hs256(&secret, &good)).await.expect("the well-formed token verifies");
    assert_eq!(id.subject, "alice");

    let cases = [
        ("expired", hs256(&secret, &with(good.clone(), json!({"exp": now() - 3600})))),
        ("not yet valid", hs256(&secret, &with(good.clone(), json!({"nbf": now() + 3600})))),
        (
            "an nbf that is not a number",
            hs256(&secret, &with(good.clone(), json!({"nbf": "soon"}))),
        ),
        ("no expiry", hs256(&secret, &with(good.clone(), json!({"exp": null})))),
        ("wrong issuer", hs256(&secret, &with(good.clone(), json!({"iss": "someone-else"})))),
        ("no issuer", hs256(&secret, &with(good.clone(), json!({"iss": null})))),
        ("wrong key", hs256(b"another-secret", &good)),
        ("alg none", unsigned(&good, None)),
        ("RS256 instead of HS256", rs256(POOL_KEY, Some(POOL_KID), &good)),
        ("no subject", hs256(&secret, &with(good.clone(), json!({"sub": null})))),
        ("an empty subject", hs256(&secret, &with(good.clone(), json!({"sub": ""})))),
        (
            "a subject that is not text",
            hs256(&secret, &with(good.clone(), json!({"sub": 42}))),
        ),
        ("a changed payload", {
            let token = hs256(&secret, &good);
            let parts: Vec<&str> = token.split('.').collect();
            let forged = URL_SAFE_NO_PAD.encode(with(good.clone(), json!({"sub": "mallory"})).to_string());
            format!("{}.{forged}.{}", parts[0], parts[2])
        }),
        ("not a JWT", "not-a-token".to_owned()),
        ("empty", String::new()),
    ];
    for (case, token) in &cases {
        assert_refused(&keys, case, token).await;
    }
}

/// Serves `POOL_JWKS` on a free loopback port; returns its URL.
async fn serve_jwks() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(|| async { ([("content-type", "application/json")], POOL_JWKS) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn cognito_tokens_are_refused_in_every_wrong_form() {
    let verifier = CognitoVerifier::new(ISSUER.into(), vec![CLIENT.into()], Some(serve_jwks().await));
    verifier.refresh().await.expect("the JWKS is served");
    let id_token = json!({"sub": "u-1", "iss": ISSUER, "aud": CLIENT, "token_use": "id", "iat": now(), "exp": now() + 600, "cognito:groups": ["staff"]});
    let access_token = json!({"sub": "u-1", "iss": ISSUER, "client_id": CLIENT, "token_use": "access", "iat": now(), "exp": now() + 600});
    for good in [&id_token, &access_token] {
        let id = verifier
            .verify(&rs256(POOL_KEY, Some(POOL_KID), good))
            .await
            .expect("the well-formed token verifies");
        assert_eq!(id.subject, "u-1");
    }

    let signed = |claims: Value| rs256(POOL_KEY, Some(POOL_KID), &claims);
    let cases = [
        ("expired", signed(with(id_token.clone(), json!({"exp": now() - 3600})))),
        ("not yet valid", signed(with(id_token.clone(), json!({"nbf": now() + 3600})))),
        ("no expiry", signed(with(id_token.clone(), json!({"exp": null})))),
        (
            "wrong issuer",
            signed(with(
                id_token.clone(),
                json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/other"}),
            )),
        ),
        ("no issuer", signed(with(id_token.clone(), json!({"iss": null})))),
        ("wrong audience", signed(with(id_token.clone(), json!({"aud": "other-client"})))),
        ("no audience", signed(with(id_token.clone(), json!({"aud": null})))),
        (
            "wrong client id",
            signed(with(access_token.clone(), json!({"client_id": "other-client"}))),
        ),
        (
            "an access token with only an audience",
            signed(with(access_token.clone(), json!({"client_id": null, "aud": CLIENT}))),
        ),
        ("no token_use", signed(with(id_token.clone(), json!({"token_use": null})))),
        ("another token_use", signed(with(id_token.clone(), json!({"token_use": "refresh"})))),
        ("no subject", signed(with(id_token.clone(), json!({"sub": null})))),
        ("an empty subject", signed(with(id_token.clone(), json!({"sub": ""})))),
        ("wrong key under the pool's key id", rs256(OTHER_KEY, Some(POOL_KID), &id_token)),
        ("unknown key id", rs256(OTHER_KEY, Some("rotated-key"), &id_token)),
        ("no key id", rs256(POOL_KEY, None, &id_token)),
        ("alg none", unsigned(&id_token, Some(POOL_KID))),
        ("HS256 signed with the pool's public key", {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(POOL_KID.into());
            jsonwebtoken::encode(&header, &id_token, &EncodingKey::from_secret(POOL_PUBLIC_KEY.as_bytes())).unwrap()
        }),
        ("not a JWT", "a.b.c".to_owned()),
    ];
    for (case, token) in &cases {
        assert_refused(&verifier, case, token).await;
    }
}

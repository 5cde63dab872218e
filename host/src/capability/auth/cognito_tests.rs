//! Cognito user pool tokens checked against the pool's JWKS, on a real AWS
//! API emulator (moto), which issues RS256 ID and access tokens and serves
//! the JWKS. Needs `CORRAL_TEST_MOTO_URL`; `scripts/test` starts moto and
//! sets it. The pool and user are made with boto3, which moto ships with.

use std::process::Command;

use crate::capability::auth::{AuthError, CognitoVerifier, Verifier};
use serde_json::Value;

/// A user pool with an app client and a user in group "advisors"; its tokens.
fn pool() -> Value {
    let url = std::env::var("CORRAL_TEST_MOTO_URL").expect("CORRAL_TEST_MOTO_URL is not set; start moto: scripts/test does it");
    let script = r#"
import boto3, json, sys, uuid
c = boto3.client("cognito-idp", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test")
pool = c.create_user_pool(PoolName="p-" + uuid.uuid4().hex)["UserPool"]["Id"]
client = c.create_user_pool_client(UserPoolId=pool, ClientName="app",
                                   ExplicitAuthFlows=["ADMIN_NO_SRP_AUTH"])["UserPoolClient"]["ClientId"]
c.admin_create_user(UserPoolId=pool, Username="ada", TemporaryPassword="Temp-pass-1!", MessageAction="SUPPRESS")
c.admin_set_user_password(UserPoolId=pool, Username="ada", Password="Secret-pass-1!", Permanent=True)
c.create_group(UserPoolId=pool, GroupName="advisors")
c.admin_add_user_to_group(UserPoolId=pool, Username="ada", GroupName="advisors")
auth = c.admin_initiate_auth(UserPoolId=pool, ClientId=client, AuthFlow="ADMIN_NO_SRP_AUTH",
                             AuthParameters={"USERNAME": "ada", "PASSWORD": "Secret-pass-1!"})["AuthenticationResult"]
print(json.dumps({"pool": pool, "client": client, "id": auth["IdToken"], "access": auth["AccessToken"],
                  "jwks": sys.argv[1] + "/" + pool + "/.well-known/jwks.json",
                  "issuer": "https://cognito-idp.us-east-1.amazonaws.com/" + pool}))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(url)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "making the user pool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

fn verifier(p: &Value, clients: &[&str]) -> CognitoVerifier {
    CognitoVerifier::new(
        p["issuer"].as_str().unwrap().into(),
        clients.iter().map(|c| c.to_string()).collect(),
        Some(p["jwks"].as_str().unwrap().into()),
    )
}

#[tokio::test]
async fn id_and_access_tokens_of_the_pool_verify() {
    let p = pool();
    let v = verifier(&p, &[p["client"].as_str().unwrap()]);
    for kind in ["id", "access"] {
        let identity = v
            .verify(p[kind].as_str().unwrap())
            .await
            .unwrap_or_else(|e| panic!("{kind} token: {e}"));
        assert!(!identity.subject.is_empty());
        assert!(identity.in_group("advisors"), "{kind} token groups: {:?}", identity.groups);
    }
}

#[tokio::test]
async fn tokens_for_another_client_or_tampered_are_refused() {
    let p = pool();
    let other = verifier(&p, &["some-other-client"]);
    assert!(matches!(other.verify(p["id"].as_str().unwrap()).await, Err(AuthError::Invalid(m)) if m.contains("app client")));

    let v = verifier(&p, &[p["client"].as_str().unwrap()]);
    let token = p["id"].as_str().unwrap();
    let (head, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{head}.{flipped}{}", &signature[1..]);
    assert!(matches!(v.verify(&tampered).await, Err(AuthError::Invalid(_))));

    // A token of the right pool's shape from another issuer.
    let wrong_issuer = CognitoVerifier::new(
        "https://cognito-idp.us-east-1.amazonaws.com/elsewhere".into(),
        vec![p["client"].as_str().unwrap().into()],
        Some(p["jwks"].as_str().unwrap().into()),
    );
    assert!(matches!(wrong_issuer.verify(token).await, Err(AuthError::Invalid(_))));
}

#[tokio::test]
async fn an_unreachable_jwks_is_unavailable_not_invalid() {
    let p = pool();
    let v = CognitoVerifier::new(
        p["issuer"].as_str().unwrap().into(),
        vec![p["client"].as_str().unwrap().into()],
        Some("http://127.0.0.1:9/jwks.json".into()),
    );
    assert!(matches!(v.verify(p["id"].as_str().unwrap()).await, Err(AuthError::Unavailable(_))));
}

//! Config secrets from SSM Parameter Store on a real AWS API emulator (moto):
//! SecureString values come back decrypted, are cached for the TTL, and a
//! missing parameter is a clear error. Needs `CORRAL_TEST_MOTO_URL`;
//! `scripts/test` starts moto and sets it.

use std::time::Duration;

use crate::capability::backend::BackendError;
use crate::capability::config::Secrets;
use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_ssm::types::ParameterType;

async fn client() -> aws_sdk_ssm::Client {
    let url = std::env::var("CORRAL_TEST_MOTO_URL").expect("CORRAL_TEST_MOTO_URL is not set; start moto: scripts/test does it");
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region("us-east-1")
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    aws_sdk_ssm::Client::new(&sdk)
}

async fn put(client: &aws_sdk_ssm::Client, name: &str, value: &str) {
    client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("moto stores the parameter");
}

#[tokio::test]
async fn secure_strings_are_decrypted_and_cached() {
    let client = client().await;
    let name = format!("/corral/test/{}/api-key", uuid::Uuid::new_v4().simple());
    put(&client, &name, "s3cr3t").await;
    let secrets = Secrets::new(client.clone(), Duration::from_millis(500));
    assert_eq!(secrets.get(&name).await.unwrap(), "s3cr3t");

    // Within the TTL the cached value is served; after it, the new one.
    put(&client, &name, "rotated").await;
    assert_eq!(secrets.get(&name).await.unwrap(), "s3cr3t");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(secrets.get(&name).await.unwrap(), "rotated");
}

#[tokio::test]
async fn a_missing_parameter_is_named_in_the_error() {
    let secrets = Secrets::new(client().await, Duration::from_secs(60));
    let name = format!("/corral/test/{}/absent", uuid::Uuid::new_v4().simple());
    match secrets.get(&name).await {
        Err(BackendError::Invalid(message)) => assert!(message.contains(&name), "{message}"),
        other => panic!("expected an invalid-parameter error, got {other:?}"),
    }
}

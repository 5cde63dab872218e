//! The smallest useful Rust Lambda function: every event gets
//! `{"hello": "world"}`. The cold-start benchmark starts it under the same
//! runtime API emulator as corral.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn hello(_event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "hello": "world" }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(hello)).await
}

//! The Lambda edge: the same `App` as the local server, driven by the Lambda
//! runtime API. One handler takes every event the host is wired to: API
//! Gateway (REST v1, HTTP v2) and function URL requests, SQS messages,
//! DynamoDB stream records, S3 notifications for the components bucket, and
//! warm-up pings.

mod http;
pub(crate) mod records;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use tracing::Instrument as _;

use crate::core::app::App;

/// What kind of event the runtime handed over.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    ApiGatewayV1,
    ApiGatewayV2,
    Sqs,
    DynamoDbStream,
    S3,
    WarmUp,
    Unknown,
}

fn classify(event: &Value) -> Kind {
    let source = event.get("source").and_then(Value::as_str);
    if source == Some("serverless-plugin-warmup")
        || (source == Some("aws.events") && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event"))
    {
        return Kind::WarmUp;
    }
    if let Some(first) = event.get("Records").and_then(Value::as_array).and_then(|r| r.first()) {
        let source = first
            .get("eventSource")
            .or_else(|| first.get("EventSource"))
            .and_then(Value::as_str);
        return match source {
            Some("aws:sqs") => Kind::Sqs,
            Some("aws:dynamodb") => Kind::DynamoDbStream,
            Some("aws:s3") => Kind::S3,
            _ => Kind::Unknown,
        };
    }
    if event.get("version").and_then(Value::as_str) == Some("2.0") && event.pointer("/requestContext/http").is_some() {
        return Kind::ApiGatewayV2;
    }
    if event.get("httpMethod").is_some() && event.get("requestContext").is_some() {
        return Kind::ApiGatewayV1;
    }
    Kind::Unknown
}

/// Serves Lambda invocations until the runtime stops the process.
pub(crate) async fn run(app: Arc<App>) -> Result<(), lambda_runtime::Error> {
    crate::core::metrics::enable();
    let cold = Arc::new(AtomicBool::new(true));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        let cold_start = cold.swap(false, Ordering::SeqCst);
        async move { handle(&app, event, cold_start).await.map_err(lambda_runtime::Error::from) }
    }))
    .await
}

/// Answers one invocation. A request that cannot be served gets an error
/// response, and batch events that cannot be handled are reported as failed
/// so the platform delivers them again; only object events, which S3 sends
/// with no way to report one failure, fail the invocation itself.
async fn handle(app: &App, event: LambdaEvent<Value>, cold_start: bool) -> Result<Value, String> {
    let (payload, context) = event.into_parts();
    let kind = classify(&payload);
    let span = tracing::info_span!("invocation", lambda_request_id = %context.request_id, cold_start, kind = ?kind);
    // The span must follow the future across awaits, not stay on one thread.
    answer(app, kind, payload, context.request_id).instrument(span).await
}

async fn answer(app: &App, kind: Kind, payload: Value, lambda_request_id: String) -> Result<Value, String> {
    Ok(match kind {
        Kind::ApiGatewayV1 | Kind::ApiGatewayV2 => http::handle(app, &payload, &lambda_request_id, kind == Kind::ApiGatewayV2).await,
        Kind::Sqs => records::sqs(app, &payload).await,
        Kind::DynamoDbStream => records::dynamodb(app, &payload).await,
        Kind::S3 => records::s3(app, &payload)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "object events failed; the invocation fails so Lambda retries it"))?,
        Kind::WarmUp => {
            tracing::info!("warm-up ping");
            json!({ "warmed": true })
        }
        Kind::Unknown => {
            tracing::error!(event = %truncate(&payload.to_string(), 500), "unrecognized event; nothing was run");
            json!({ "error": "unrecognized event" })
        }
    })
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_event_kinds_apart() {
        assert_eq!(classify(&json!({"source": "serverless-plugin-warmup"})), Kind::WarmUp);
        assert_eq!(
            classify(&json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})),
            Kind::WarmUp
        );
        assert_eq!(classify(&json!({"Records": [{"eventSource": "aws:sqs"}]})), Kind::Sqs);
        assert_eq!(
            classify(&json!({"Records": [{"eventSource": "aws:dynamodb"}]})),
            Kind::DynamoDbStream
        );
        assert_eq!(classify(&json!({"Records": [{"eventSource": "aws:s3"}]})), Kind::S3);
        assert_eq!(
            classify(&json!({"version": "2.0", "rawPath": "/", "requestContext": {"http": {"method": "GET"}}})),
            Kind::ApiGatewayV2
        );
        assert_eq!(
            classify(&json!({"httpMethod": "GET", "path": "/", "requestContext": {}})),
            Kind::ApiGatewayV1
        );
        assert_eq!(classify(&json!({"hello": 1})), Kind::Unknown);
    }
}

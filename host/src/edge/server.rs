//! The local HTTP server: every request goes through [`App::handle`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use tokio::net::TcpListener;

use crate::core::app::App;
use crate::core::error::ApiError;
use crate::core::request::{Request, Response};

/// Serves `app` on `listener` until `shutdown` resolves; requests in flight finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = axum::Router::new().fallback(handle).with_state(app);
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

async fn handle(State(app): State<Arc<App>>, request: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    // A value that is not text is kept (lossily), never dropped: a dropped
    // `authorization` would turn a bad credential into an anonymous caller.
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let mut request = Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers,
        body: Default::default(),
        request_id: None,
        verified_caller: None,
    };
    let limit = app.max_body_bytes();
    match axum::body::to_bytes(body, limit).await {
        Ok(body) => request.body = body,
        Err(_) => {
            return into_axum(app.refuse(
                &request,
                ApiError::payload_too_large(format!("the body is larger than {limit} bytes")),
            ));
        }
    }
    into_axum(app.handle(request).await)
}

fn into_axum(r: Response) -> axum::response::Response {
    let mut out = axum::response::Response::new(Body::from(r.body));
    *out.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            out.headers_mut().append(k, v);
        }
    }
    out
}

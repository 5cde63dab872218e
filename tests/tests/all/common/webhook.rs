//! A webhook on a loopback port that records what it is sent.

use std::sync::{Arc, Mutex};

/// One request a webhook received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A webhook on a loopback port that records every request and answers 202,
/// on a runtime of its own so that blocking test code never stalls it.
pub struct Webhook {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the webhook");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(
                    move |method: axum::http::Method,
                          uri: axum::http::Uri,
                          headers: axum::http::HeaderMap,
                          body: axum::body::Bytes| async move {
                        log.lock().unwrap().push(Received {
                            method: method.to_string(),
                            path: uri.to_string(),
                            content_type: headers
                                .get("content-type")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned),
                            body: body.to_vec(),
                        });
                        (axum::http::StatusCode::ACCEPTED, "queued")
                    },
                );
                axum::serve(listener, app).await.unwrap();
            });
        });
        Webhook { port, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

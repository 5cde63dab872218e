//! A fake Alma users API on loopback for the Alma component tests: users'
//! loans, requests and fees, Alma's paging and error shapes, and a record of
//! every call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

pub const API_KEY: &str = "test-key";

pub const LOAN_FIELDS: &[&str] = &[
    "loan_id",
    "renewable",
    "call_number",
    "loan_status",
    "due_date",
    "item_barcode",
    "mms_id",
    "title",
    "author",
    "description",
    "publication_year",
    "process_status",
];
pub const REQUEST_FIELDS: &[&str] = &[
    "request_id",
    "user_primary_id",
    "request_type",
    "request_sub_type",
    "request_status",
    "pickup_location",
    "pickup_location_type",
    "pickup_location_library",
    "material_type",
    "comment",
    "place_in_queue",
    "request_date",
    "expiry_date",
    "barcode",
    "mms_id",
    "title",
    "author",
    "description",
    "resource_sharing",
    "process_status",
];
pub const FEE_FIELDS: &[&str] = &[
    "id",
    "user_primary_id",
    "type",
    "status",
    "balance",
    "remaining_vat_amount",
    "original_amount",
    "original_vat_amount",
    "creation_time",
    "comment",
    "owner",
    "title",
    "barcode",
    "bursar_transaction_id",
    "transactions",
];

// ---------------------------------------------------------------------------
// The fake Alma API.

/// One user's records as Alma holds them.
#[derive(Default, Clone)]
pub struct AlmaUser {
    pub loans: Vec<Value>,
    pub requests: Vec<Value>,
    pub fees: Vec<Value>,
}

#[derive(Default)]
pub struct AlmaData {
    pub users: HashMap<String, AlmaUser>,
    /// How long every answer waits.
    pub delay: Duration,
    /// Every request's path and query, in arrival order.
    pub hits: Vec<String>,
    /// Requests being answered now, and the most there ever were at once.
    pub in_flight: usize,
    pub max_in_flight: usize,
}

/// Alma's users API on a loopback port, on a runtime of its own so that
/// blocking test code never stalls it.
pub struct FakeAlma {
    pub addr: SocketAddr,
    pub data: Arc<Mutex<AlmaData>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeAlma {
    pub fn start(users: &[(&str, AlmaUser)]) -> FakeAlma {
        let data = Arc::new(Mutex::new(AlmaData {
            users: users
                .iter()
                .map(|(id, u)| ((*id).to_owned(), u.clone()))
                .collect(),
            ..AlmaData::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the fake Alma");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = data.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(alma_answer).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        FakeAlma {
            addr,
            data,
            stop: Some(stop),
        }
    }

    /// The base URL the component is configured with.
    pub fn base_url(&self) -> String {
        format!("http://{}/almaws/v1", self.addr)
    }

    pub fn hits(&self) -> Vec<String> {
        self.data.lock().unwrap().hits.clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.data.lock().unwrap().max_in_flight
    }

    pub fn set_delay(&self, delay: Duration) {
        self.data.lock().unwrap().delay = delay;
    }

    /// Forgets the calls so far.
    pub fn clear_hits(&self) {
        self.data.lock().unwrap().hits.clear();
    }
}

impl Drop for FakeAlma {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn alma_json(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Alma's error shape.
pub fn alma_error(status: StatusCode, code: &str, message: &str) -> Response {
    alma_json(
        status,
        &json!({"errorsExist": true, "errorList": {"error": [{"errorCode": code, "errorMessage": message, "trackingId": "E01-0101"}]}, "result": null}),
    )
}

pub async fn alma_answer(
    State(data): State<Arc<Mutex<AlmaData>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (user, delay) = {
        let mut data = data.lock().unwrap();
        data.hits.push(uri.to_string());
        data.in_flight += 1;
        data.max_in_flight = data.max_in_flight.max(data.in_flight);
        let path = uri
            .path()
            .strip_prefix("/almaws/v1/users/")
            .unwrap_or_default();
        let user = path
            .split('/')
            .next()
            .and_then(|id| data.users.get(id).cloned());
        (user, data.delay)
    };
    tokio::time::sleep(delay).await;
    data.lock().unwrap().in_flight -= 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("apikey {API_KEY}"))
    {
        return alma_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "API-key not defined or not configured to allow this API.",
        );
    }
    let query: HashMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if query.get("format").map(String::as_str) != Some("json") {
        return alma_error(
            StatusCode::BAD_REQUEST,
            "402119",
            "General error: only format=json is served here.",
        );
    }
    let parts: Vec<&str> = uri
        .path()
        .trim_start_matches("/almaws/v1/users/")
        .split('/')
        .collect();
    let Some(user) = user else {
        return alma_error(
            StatusCode::BAD_REQUEST,
            "401861",
            &format!("User with identifier {} was not found.", parts[0]),
        );
    };
    let (records, list_key, id_field) = match parts.get(1) {
        Some(&"loans") => (&user.loans, "item_loan", "loan_id"),
        Some(&"requests") => (&user.requests, "user_request", "request_id"),
        Some(&"fees") => (&user.fees, "fee", "id"),
        _ => return alma_error(StatusCode::BAD_REQUEST, "402119", "General error."),
    };
    match parts.get(2) {
        None => {
            // Alma's paging: limit 0 to 100 (default 10), offset; an empty page has no array.
            let limit: usize = query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(10)
                .min(100);
            let offset: usize = query
                .get("offset")
                .and_then(|o| o.parse().ok())
                .unwrap_or(0);
            let page: Vec<Value> = records.iter().skip(offset).take(limit).cloned().collect();
            let mut body = json!({ "total_record_count": records.len() });
            if !page.is_empty() {
                body[list_key] = Value::Array(page);
            }
            alma_json(StatusCode::OK, &body)
        }
        Some(id) => match records.iter().find(|r| r[id_field] == *id) {
            Some(record) => alma_json(StatusCode::OK, record),
            None if list_key == "item_loan" => alma_error(
                StatusCode::BAD_REQUEST,
                "401823",
                &format!("Loan ID {id} does not exist."),
            ),
            None => alma_error(
                StatusCode::NOT_FOUND,
                "401652",
                &format!("The record {id} was not found."),
            ),
        },
    }
}

// Records shaped like Alma's, with fields the resolver must drop.

pub fn loan(user: &str, id: &str, title: &str, due: &str) -> Value {
    json!({
        "loan_id": id, "circ_desk": {"value": "DEFAULT_CIRC_DESK", "desc": "Loan desk"},
        "library": {"value": "MAIN", "desc": "Main library"}, "user_id": user,
        "item_barcode": format!("B{id}"), "due_date": due, "loan_status": "ACTIVE",
        "loan_date": "2026-01-05T10:00:00Z", "process_status": "NORMAL", "title": title,
        "author": "Knuth, Donald", "mms_id": "991234", "item_id": "231234",
        "publication_year": "1997", "call_number": "QA76.6", "renewable": true,
        "link": format!("https://api-eu.hosted.exlibrisgroup.com/almaws/v1/users/{user}/loans/{id}")
    })
}

pub fn request(user: &str, id: &str, title: &str) -> Value {
    json!({
        "request_id": id, "user_primary_id": user, "request_type": "HOLD",
        "request_sub_type": {"value": "PATRON_PHYSICAL", "desc": "Patron physical item request"},
        "request_status": "NOT_STARTED", "pickup_location": "Main library",
        "pickup_location_type": "LIBRARY", "pickup_location_library": "MAIN",
        "material_type": {"value": "BK", "desc": "Book"}, "place_in_queue": 1,
        "request_date": "2026-01-02Z", "request_time": "2026-01-02T09:00:00Z",
        "expiry_date": "2026-03-02Z", "barcode": "39031", "mms_id": "995678", "title": title,
        "author": "Hopper, Grace", "task_name": "Pickup From Shelf", "managed_by_library": "Main library"
    })
}

pub fn fee(user: &str, id: &str, balance: f64) -> Value {
    json!({
        "id": id, "type": {"value": "OVERDUEFINE", "desc": "Overdue fine"},
        "status": {"value": "ACTIVE", "desc": "Active"}, "user_primary_id": {"value": user},
        "balance": balance, "remaining_vat_amount": 0.0, "original_amount": balance,
        "original_vat_amount": 0.0, "creation_time": "2026-01-03T08:00:00Z",
        "owner": {"value": "MAIN", "desc": "Main library"}, "title": "Overdue book",
        "barcode": {"value": "39032"}, "transactions": {"transaction": []},
        "link": format!("https://api-eu.hosted.exlibrisgroup.com/almaws/v1/users/{user}/fees/{id}")
    })
}

/// `record` with only `fields`, as the resolver answers it.
pub fn kept(record: &Value, fields: &[&str]) -> Value {
    let object = record.as_object().unwrap();
    Value::Object(
        fields
            .iter()
            .filter_map(|f| object.get(*f).map(|v| ((*f).to_owned(), v.clone())))
            .collect(),
    )
}

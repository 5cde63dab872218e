//! A component that attacks its host, one route per attack, in the style of
//! wasmtime's test programs. The host's tests (`tests/tests/all/hostile.rs`)
//! run it next to a healthy tenant and check that each attack gets its
//! clear failure and hurts no one else.
//!
//! `GET /hostile/<attack>` runs one attack; query parameters tune it. Two
//! more routes let tests check that a path cannot pass one route's access
//! rule and run another's handler: `/admin/{id}` (callers in group
//! `admin` only) and `/{kind}/{id}/{field}` (public).

use std::hint::black_box;

use corral_sdk::bindings::corral::host::{cache, config, db, log, queue};
use corral_sdk::bindings::exports::corral::host::handler::Response;
use corral_sdk::{ApiError, Ctx, Event, Guest, Request, Router, http, json, text};
use serde_json::{Value, json};

struct Hostile;

impl Guest for Hostile {
    fn init() -> Result<(), String> {
        Ok(())
    }

    fn handle_request(request: Request) -> Response {
        Router::new()
            .get("/admin/{id}", admin)
            .get("/{kind}/{id}/{field}", field)
            .get("/{attack}", attack)
            .post("/{attack}", attack)
            .handle(request)
    }

    fn handle_events(events: Vec<Event>) -> Vec<String> {
        corral_sdk::fail_unexpected_events(events)
    }
}

fn admin(ctx: &Ctx) -> Result<Response, ApiError> {
    Ok(json(
        200,
        &json!({ "route": "admin", "id": ctx.param::<String>("id")? }),
    ))
}

fn field(ctx: &Ctx) -> Result<Response, ApiError> {
    Ok(json(
        200,
        &json!({ "route": "field", "kind": ctx.param::<String>("kind")? }),
    ))
}

fn attack(ctx: &Ctx) -> Result<Response, ApiError> {
    let name: String = ctx.param("attack")?;
    let number = |key: &str, default: u64| -> Result<u64, ApiError> {
        Ok(ctx.query::<u64>(key)?.unwrap_or(default))
    };
    match name.as_str() {
        "ping" => Ok(text(200, "pong")),
        "spin" => spin(),
        "grow" => grow(),
        "big-body" => Ok(text(200, &"x".repeat(number("bytes", 8 << 20)? as usize))),
        "big-log" => {
            log::log(
                log::Level::Info,
                &"L".repeat(number("bytes", 16 << 20)? as usize),
            );
            Ok(json(200, &json!({ "logged": 1 })))
        }
        "log-flood" => {
            let lines = number("lines", 100_000)?;
            let line = "flood ".repeat(20);
            for _ in 0..lines {
                log::log(log::Level::Info, &line);
            }
            Ok(json(200, &json!({ "logged": lines })))
        }
        "cache-value" => {
            let value = vec![b'v'; number("bytes", 1 << 20)? as usize];
            cache::set("junk", "big", &value, None)?;
            Ok(json(200, &json!({ "stored": value.len() })))
        }
        "get-many" => get_many(number("keys", 12)?, number("bytes", 380 * 1024)?),
        "outbound-flood" => outbound_flood(ctx, number("requests", 32)?),
        "fetch" => fetch(ctx),
        "smuggle" => Ok(Response {
            status: 200,
            headers: vec![
                ("content-length".into(), "0".into()),
                ("Transfer-Encoding".into(), "chunked".into()),
                ("connection".into(), "close".into()),
                ("keep-alive".into(), "timeout=999".into()),
                ("upgrade".into(), "h2c".into()),
                ("x-request-id".into(), "forged".into()),
                ("content-type".into(), "text/plain".into()),
            ],
            body: b"0\r\n\r\nGET /admin/1 HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
        }),
        "many-headers" => Ok(Response {
            status: 200,
            headers: (0..number("headers", 5000)?)
                .map(|i| (format!("x-h{i}"), "v".into()))
                .collect(),
            body: b"headers".to_vec(),
        }),
        "big-header" => Ok(Response {
            status: 200,
            headers: vec![(
                "x-big".into(),
                "h".repeat(number("bytes", 1 << 20)? as usize),
            )],
            body: b"header".to_vec(),
        }),
        "bad-status" => Ok(Response {
            status: 1000,
            headers: Vec::new(),
            body: Vec::new(),
        }),
        "table" => Ok(json(200, &json!({ "record": db::get("notes", "any")? }))),
        "store" => Ok(json(
            200,
            &json!({ "value": cache::get("sessions", "any")? }),
        )),
        "queue" => {
            let message = queue::Message {
                body: "forged".into(),
                attributes: Vec::new(),
                group_id: None,
                dedup_id: None,
                delay_seconds: 0,
            };
            Ok(json(200, &json!({ "id": queue::send("jobs", &message)? })))
        }
        "secret" => {
            let key = ctx
                .query::<String>("key")?
                .unwrap_or_else(|| "greeting".into());
            Ok(json(
                200,
                &json!({ "key": key, "value": config::get(&key)? }),
            ))
        }
        _ => Err(ApiError::not_found(format!("No attack '{name}'"))),
    }
}

/// Spins until the host's time limit stops it.
fn spin() -> Result<Response, ApiError> {
    let mut turns: u64 = 0;
    loop {
        turns = black_box(turns.wrapping_add(1));
    }
}

/// Touches memory until the host's memory cap stops it.
fn grow() -> Result<Response, ApiError> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        held.push(black_box(vec![0xA5; 1 << 20]));
        black_box(&held);
    }
}

/// Fills `keys` cache values of `bytes` each, then asks for all at once.
fn get_many(keys: u64, bytes: u64) -> Result<Response, ApiError> {
    let value = vec![b'g'; bytes as usize];
    let names: Vec<String> = (0..keys).map(|i| format!("k{i}")).collect();
    for name in &names {
        cache::set("junk", name, &value, Some(60))?;
    }
    let values = cache::get_many("junk", &names)?;
    Ok(json(200, &json!({ "values": values.len() })))
}

/// GETs the query's `url`: what the host lets through, as the SDK reports it.
fn fetch(ctx: &Ctx) -> Result<Response, ApiError> {
    let url = ctx
        .query::<String>("url")?
        .ok_or_else(|| ApiError::bad_request("Query parameter 'url' is required"))?;
    let reply = http::get(url).timeout_ms(3000).send()?;
    Ok(json(
        200,
        &json!({ "status": reply.status, "body": String::from_utf8_lossy(&reply.body) }),
    ))
}

/// Starts `requests` GETs of the query's `url` at once; counts the answers
/// and the refusals.
fn outbound_flood(ctx: &Ctx, requests: u64) -> Result<Response, ApiError> {
    let url = ctx
        .query::<String>("url")?
        .ok_or_else(|| ApiError::bad_request("Query parameter 'url' is required"))?;
    let gets = (0..requests)
        .map(|_| http::get(url.clone()).timeout_ms(5000))
        .collect();
    let mut answered = 0;
    let mut refused: Vec<Value> = Vec::new();
    for result in http::get_all(gets, requests as usize) {
        match result {
            Ok(_) => answered += 1,
            Err(e) => refused.push(e.to_string().into()),
        }
    }
    Ok(json(
        200,
        &json!({ "answered": answered, "refused": refused }),
    ))
}

corral_sdk::export!(Hostile);

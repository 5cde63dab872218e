//! API Gateway and function URL payloads to and from the host's one
//! request shape. REST APIs send payload 1.0; HTTP APIs and function URLs
//! send 2.0. The path is the raw path, without a named stage.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::capability::auth::Identity;
use crate::core::app::App;
use crate::core::error::ApiError;
use crate::core::request::{Request, Response};

/// Answers one API Gateway or function URL event.
pub(super) async fn handle(app: &App, event: &Value, lambda_request_id: &str, v2: bool) -> Value {
    let parsed = if v2 { from_v2(event) } else { from_v1(event) };
    let response = match parsed {
        Ok(mut request) => {
            request.request_id = Some(lambda_request_id.to_owned());
            app.handle(request).await
        }
        Err(message) => {
            let request = Request {
                request_id: Some(lambda_request_id.to_owned()),
                ..Default::default()
            };
            app.refuse(&request, ApiError::bad_request(message))
        }
    };
    if v2 { to_v2(response) } else { to_v1(response) }
}

fn str_at<'a>(event: &'a Value, pointer: &str) -> Option<&'a str> {
    event.pointer(pointer).and_then(Value::as_str)
}

fn body_of(event: &Value) -> Result<bytes::Bytes, String> {
    let body = event.get("body").and_then(Value::as_str).unwrap_or("");
    if event.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
        STANDARD
            .decode(body)
            .map(Into::into)
            .map_err(|e| format!("the body is not valid base64: {e}"))
    } else {
        Ok(bytes::Bytes::copy_from_slice(body.as_bytes()))
    }
}

/// Claims an API Gateway authorizer verified, as a caller.
fn verified_caller(claims: Option<&Value>) -> Option<Identity> {
    let claims: Map<String, Value> = claims?.as_object()?.clone();
    match Identity::from_claims(claims) {
        Ok(identity) => Some(identity),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring authorizer claims without a subject");
            None
        }
    }
}

/// Payload 1.0 (REST API).
fn from_v1(event: &Value) -> Result<Request, String> {
    let method = event
        .get("httpMethod")
        .and_then(Value::as_str)
        .ok_or("the event has no httpMethod")?
        .to_ascii_uppercase();
    let path = event.get("path").and_then(Value::as_str).unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    match event.get("multiValueHeaders").and_then(Value::as_object).filter(|m| !m.is_empty()) {
        Some(multi) => {
            for (name, values) in multi {
                for v in values.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    headers.push((name.to_ascii_lowercase(), v.to_owned()));
                }
            }
        }
        None => {
            for (name, v) in event.get("headers").and_then(Value::as_object).into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    headers.push((name.to_ascii_lowercase(), v.to_owned()));
                }
            }
        }
    }
    // API Gateway hands query parameters over decoded; the host parses a raw query.
    let mut query = form_urlencoded::Serializer::new(String::new());
    match event
        .get("multiValueQueryStringParameters")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
    {
        Some(multi) => {
            for (name, values) in multi {
                for v in values.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    query.append_pair(name, v);
                }
            }
        }
        None => {
            for (name, v) in event.get("queryStringParameters").and_then(Value::as_object).into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    query.append_pair(name, v);
                }
            }
        }
    }
    Ok(Request {
        method,
        path,
        query: query.finish(),
        headers,
        body: body_of(event)?,
        request_id: None,
        verified_caller: verified_caller(event.pointer("/requestContext/authorizer/claims")),
    })
}

/// Payload 2.0 (HTTP API, function URL).
fn from_v2(event: &Value) -> Result<Request, String> {
    let method = str_at(event, "/requestContext/http/method")
        .ok_or("the event has no requestContext.http.method")?
        .to_ascii_uppercase();
    let raw_path = event.get("rawPath").and_then(Value::as_str).unwrap_or("/");
    let path = without_stage(raw_path, str_at(event, "/requestContext/stage"));
    let mut headers: Vec<(String, String)> = event
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_owned())))
        .collect();
    // Payload 2.0 moves cookies out of the headers.
    let cookies: Vec<&str> = event
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !cookies.is_empty() {
        headers.push(("cookie".into(), cookies.join("; ")));
    }
    Ok(Request {
        method,
        path,
        query: event.get("rawQueryString").and_then(Value::as_str).unwrap_or("").to_owned(),
        headers,
        body: body_of(event)?,
        request_id: None,
        verified_caller: verified_caller(event.pointer("/requestContext/authorizer/jwt/claims")),
    })
}

/// The raw path of an HTTP API carries a named stage in front.
fn without_stage(raw_path: &str, stage: Option<&str>) -> String {
    if let Some(stage) = stage.filter(|s| !s.is_empty() && *s != "$default") {
        let prefix = format!("/{stage}");
        if raw_path == prefix {
            return "/".into();
        }
        if let Some(rest) = raw_path.strip_prefix(&prefix).filter(|r| r.starts_with('/')) {
            return rest.to_owned();
        }
    }
    raw_path.to_owned()
}

/// A body goes back as text when it is text, else base64.
fn encode_body(response: &Response) -> (String, bool) {
    let textual = response
        .header("content-type")
        .map(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("text/")
                || ct.contains("json")
                || ct.contains("xml")
                || ct.contains("javascript")
                || ct.contains("x-www-form-urlencoded")
        })
        .unwrap_or(response.body.is_empty());
    match (textual, std::str::from_utf8(&response.body)) {
        (true, Ok(text)) => (text.to_owned(), false),
        _ => (STANDARD.encode(&response.body), true),
    }
}

fn to_v1(response: Response) -> Value {
    let (body, base64) = encode_body(&response);
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in &response.headers {
        multi
            .entry(k.clone())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("an array")
            .push(json!(v));
    }
    json!({ "statusCode": response.status, "multiValueHeaders": multi, "body": body, "isBase64Encoded": base64 })
}

fn to_v2(response: Response) -> Value {
    let (body, base64) = encode_body(&response);
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies = Vec::new();
    for (k, v) in &response.headers {
        if k == "set-cookie" {
            cookies.push(json!(v));
            continue;
        }
        // Payload 2.0 has one value per header: repeated ones are joined.
        match headers.get_mut(k) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(v);
            }
            _ => {
                headers.insert(k.clone(), json!(v));
            }
        }
    }
    json!({ "statusCode": response.status, "headers": headers, "cookies": cookies, "body": body, "isBase64Encoded": base64 })
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_rest_api_event_with_cognito_claims() {
        let event = json!({
            "httpMethod": "POST", "path": "/students",
            "multiValueHeaders": {"Content-Type": ["application/json"], "X-Multi": ["a", "b"]},
            "multiValueQueryStringParameters": {"tag": ["x y", "z"]},
            "body": "eyJhIjoxfQ==", "isBase64Encoded": true,
            "requestContext": {"stage": "prod", "authorizer": {"claims": {"sub": "u-1", "cognito:username": "ada", "cognito:groups": "advisors,staff"}}}
        });
        let r = from_v1(&event).unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_str()),
            ("POST", "/students", "tag=x+y&tag=z")
        );
        assert_eq!(&r.body[..], br#"{"a":1}"#);
        assert_eq!(r.headers.iter().filter(|(k, _)| k == "x-multi").count(), 2);
        let caller = r.verified_caller.unwrap();
        assert_eq!((caller.subject.as_str(), caller.username.as_deref()), ("u-1", Some("ada")));
        assert!(caller.in_group("advisors") && caller.in_group("staff"));
    }

    #[test]
    fn reads_an_http_api_event_with_jwt_claims() {
        let event = json!({
            "version": "2.0", "rawPath": "/dev/students/1", "rawQueryString": "a=1&b=x%20y",
            "cookies": ["c1=v1", "c2=v2"], "headers": {"Accept": "application/json"},
            "requestContext": {"stage": "dev", "http": {"method": "get"},
                "authorizer": {"jwt": {"claims": {"sub": "u-2", "cognito:groups": "[admins advisors]"}, "scopes": null}}}
        });
        let r = from_v2(&event).unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_str()),
            ("GET", "/students/1", "a=1&b=x%20y")
        );
        assert!(r.headers.contains(&("cookie".into(), "c1=v1; c2=v2".into())));
        let caller = r.verified_caller.unwrap();
        assert!(caller.in_group("admins") && caller.in_group("advisors"));
        assert_eq!(without_stage("/students", Some("$default")), "/students");
        assert_eq!(without_stage("/dev", Some("dev")), "/");
        assert_eq!(without_stage("/devices", Some("dev")), "/devices");
    }

    #[test]
    fn writes_both_payload_versions() {
        let response = Response {
            status: 201,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("set-cookie".into(), "a=1".into()),
                ("vary".into(), "origin".into()),
                ("vary".into(), "accept".into()),
            ],
            body: br#"{"ok":true}"#.to_vec(),
        };
        let v2 = to_v2(response.clone());
        assert_eq!(
            (v2["statusCode"].as_u64(), v2["body"].as_str(), v2["isBase64Encoded"].as_bool()),
            (Some(201), Some(r#"{"ok":true}"#), Some(false))
        );
        assert_eq!(v2["headers"]["vary"], "origin, accept");
        assert_eq!(v2["cookies"], json!(["a=1"]));
        let v1 = to_v1(response);
        assert_eq!(v1["multiValueHeaders"]["vary"], json!(["origin", "accept"]));
        let binary = Response {
            status: 200,
            headers: vec![("content-type".into(), "image/png".into())],
            body: vec![0, 159, 146, 150],
        };
        assert_eq!(to_v2(binary)["isBase64Encoded"], true);
    }
}

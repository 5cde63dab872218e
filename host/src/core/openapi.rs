//! The OpenAPI 3.1 document of everything a manifest serves: every route
//! under its mount, its path parameters and methods, its access (a bearer
//! token, and the groups a caller must be in), the one error shape and the
//! error statuses a route can give. Request and response bodies come from
//! the schema file a component declares (`schemas = "api.json"` in its
//! manifest entry), never from hand-written YAML:
//!
//! ```json
//! {
//!   "schemas": { "Note": { "type": "object", "properties": { "title": { "type": "string" } } } },
//!   "routes": {
//!     "POST /notes": { "summary": "Creates a note", "request": { "$ref": "Note" },
//!                      "responses": { "201": { "$ref": "Note" } } },
//!     "GET /notes/{id}": { "responses": { "200": { "$ref": "Note" } } }
//!   }
//! }
//! ```
//!
//! A route is named by method and path as in the manifest (relative to the
//! mount). A `$ref` that does not start with `#` names one of the file's
//! `schemas`; each component's schemas are kept under its own name, so two
//! components may both call a schema `Note`. A response of `null` has no
//! body. Query parameters go under `"query": { "limit": { "type": "integer" } }`
//! (those a request must have also under `"required_query": ["limit"]`);
//! parameters constrained together (at least one filter) as one object under
//! `"filters"`, which a client sends exploded: `?name=Ada&year=2`.
//! A path parameter is any single non-empty segment, unless the file's
//! `"parameters": { "college_id": { "type": "integer" } }` says more; that
//! schema holds on every route of the component with a parameter of that name.
//! `#/components/schemas/JsonValue` is any JSON value a record can store
//! (`NonNullJsonValue`: any but null).
//! A route's own `responses` may also give an error status a body of its own
//! shape, for a component that keeps the error shape of the API it replaces.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::core::manifest::{Access, ComponentSpec, Manifest, RouteSpec};

/// What a component's schema file declares.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Declared {
    /// Named JSON Schemas its routes refer to.
    #[serde(default)]
    schemas: BTreeMap<String, Value>,
    /// By `"METHOD /path"`.
    #[serde(default)]
    routes: BTreeMap<String, DeclaredRoute>,
    /// Path parameters' schemas, by name.
    #[serde(default)]
    parameters: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclaredRoute {
    summary: Option<String>,
    /// The JSON request body's schema.
    request: Option<Value>,
    /// Each success status's body schema (null: no body).
    #[serde(default)]
    responses: BTreeMap<String, Value>,
    /// The query parameters, with their schemas.
    #[serde(default)]
    query: BTreeMap<String, Value>,
    /// Those of them a request must have.
    #[serde(default)]
    required_query: Vec<String>,
    /// Query parameters constrained together (an object schema, such as
    /// filters of which at least one is needed: `minProperties: 1`), sent
    /// as one object exploded into the query string: `?name=Ada&year=2`.
    filters: Option<Value>,
}

/// The document for `manifest`, or why a component's schema file cannot be
/// used (it is unreadable, malformed, or declares a route the component
/// does not have).
pub(crate) fn document(manifest: &Manifest) -> Result<Value, String> {
    let spec = manifest.openapi.clone().unwrap_or_default();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    schemas.insert("JsonValue".into(), json_value_schema(true));
    schemas.insert("NonNullJsonValue".into(), json_value_schema(false));
    for component in manifest.components.values() {
        let declared = declared(component)?;
        for (name, schema) in &declared.schemas {
            schemas.insert(format!("{}.{name}", component.name), qualify(schema, &component.name));
        }
        for route in &component.routes {
            let path = full_path(&component.mount, &route.path);
            let item = paths.entry(path).or_default();
            let path_parameters = parameters(&route.path, &declared.parameters, &component.name);
            if !path_parameters.is_empty() {
                item.entry("parameters").or_insert(Value::Array(path_parameters));
            }
            for method in &route.methods {
                let key = format!("{method} {}", route.path);
                let declared_route = declared.routes.get(&key);
                item.insert(method.to_ascii_lowercase(), operation(component, route, method, declared_route));
            }
        }
    }
    if manifest.openapi.as_ref().is_some_and(|o| o.serve) {
        paths.entry(SERVED_AT.into()).or_default().insert(
            "get".into(),
            json!({
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}},
            }),
        );
    }
    Ok(json!({
        "openapi": "3.1.0",
        "info": {
            "title": spec.title.as_deref().unwrap_or("corral"),
            "version": spec.version.as_deref().unwrap_or("1"),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "responses": {
                "Error": {
                    "description": "An error, in the one shape every failure has",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        },
    }))
}

/// Where the host serves the document when `[openapi] serve = true`.
pub(crate) const SERVED_AT: &str = "/openapi.json";

fn declared(component: &ComponentSpec) -> Result<Declared, String> {
    let Some(path) = &component.schemas else {
        return Ok(Declared::default());
    };
    let name = &component.name;
    let text = std::fs::read_to_string(path).map_err(|e| format!("component \"{name}\": cannot read schemas {}: {e}", path.display()))?;
    let declared: Declared = serde_json::from_str(&text).map_err(|e| format!("component \"{name}\": schemas {}: {e}", path.display()))?;
    for (key, route) in &declared.routes {
        if let Some(unknown) = route.required_query.iter().find(|q| !route.query.contains_key(*q)) {
            return Err(format!(
                "component \"{name}\": schemas {} requires the query parameter \"{unknown}\" on \"{key}\" without declaring it under \"query\"",
                path.display()
            ));
        }
        let known = component
            .routes
            .iter()
            .any(|r| r.methods.iter().any(|m| format!("{m} {}", r.path) == *key));
        if !known {
            return Err(format!(
                "component \"{name}\": schemas {} declares \"{key}\", which is not one of its routes (\"METHOD /path\" as in the manifest)",
                path.display()
            ));
        }
    }
    Ok(declared)
}

/// A route's path under its mount, as a client calls it.
fn full_path(mount: &str, path: &str) -> String {
    let path = path.replace('+', "");
    match (mount, path.as_str()) {
        ("", p) => p.to_owned(),
        (m, "/") => m.to_owned(),
        (m, p) => format!("{m}{p}"),
    }
}

fn parameters(path: &str, declared: &BTreeMap<String, Value>, component: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let (name, greedy) = match name.strip_suffix('+') {
                Some(name) => (name, true),
                None => (name, false),
            };
            let schema = declared.get(name).map_or_else(segment_schema, |s| qualify(s, component));
            let mut parameter = json!({"name": name, "in": "path", "required": true, "schema": schema});
            if greedy {
                parameter["description"] = json!("One or more path segments");
            }
            parameter
        })
        .collect()
}

/// What the router takes as one path segment: not empty, not `.` or `..`,
/// and without a slash or backslash, even percent-encoded.
fn segment_schema() -> Value {
    json!({"type": "string", "pattern": "^(?!\\.{1,2}$)[^/\\\\]+$"})
}

fn operation(component: &ComponentSpec, route: &RouteSpec, method: &str, declared: Option<&DeclaredRoute>) -> Value {
    let mut op = Map::new();
    op.insert("tags".into(), json!([component.name]));
    op.insert(
        "operationId".into(),
        Value::String(operation_id(&component.name, method, &route.path)),
    );
    if let Some(summary) = declared.and_then(|d| d.summary.as_ref()) {
        op.insert("summary".into(), Value::String(summary.clone()));
    }
    match route.access {
        Access::Public => {
            op.insert("security".into(), json!([]));
        }
        Access::Caller => {
            op.insert("security".into(), json!([{"bearer": []}]));
            if !route.groups.is_empty() {
                op.insert(
                    "description".into(),
                    Value::String(format!("Callers in any of the groups: {}.", route.groups.join(", "))),
                );
                op.insert("x-corral-groups".into(), json!(route.groups));
            }
        }
    }
    let mut params: Vec<Value> = declared
        .into_iter()
        .flat_map(|d| &d.query)
        .map(|(name, schema)| {
            let required = declared.is_some_and(|d| d.required_query.contains(name));
            json!({"name": name, "in": "query", "required": required, "schema": qualify(schema, &component.name)})
        })
        .collect();
    if let Some(filters) = declared.and_then(|d| d.filters.as_ref()) {
        let needed = filters.get("minProperties").and_then(Value::as_u64).is_some_and(|n| n > 0);
        params.push(
            json!({"name": "filters", "in": "query", "required": needed, "style": "form", "explode": true,
            "schema": qualify(filters, &component.name)}),
        );
    }
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    let has_body = matches!(method, "POST" | "PUT" | "PATCH");
    if let Some(schema) = declared.and_then(|d| d.request.as_ref()) {
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": qualify(schema, &component.name)}}}),
        );
    }
    let mut responses = Map::new();
    match declared.filter(|d| !d.responses.is_empty()) {
        Some(d) => {
            for (status, schema) in &d.responses {
                let response = match schema {
                    Value::Null => json!({"description": description(status)}),
                    schema => json!({"description": description(status),
                        "content": {"application/json": {"schema": qualify(schema, &component.name)}}}),
                };
                responses.insert(status.clone(), response);
            }
        }
        None => {
            responses.insert(
                "2XX".into(),
                json!({"description": "Success; the component declares no schema for it"}),
            );
        }
    }
    let mut errors = vec!["400", "404", "500", "503", "504"];
    if !component.grants.hosts.is_empty() {
        // An upstream the component calls that cannot be reached, or fails.
        errors.push("502");
    }
    if route.access == Access::Caller {
        errors.push("401");
        if !route.groups.is_empty() {
            errors.push("403");
        }
    }
    if has_body {
        errors.push("413");
    }
    for status in errors {
        responses
            .entry(status)
            .or_insert_with(|| json!({"$ref": "#/components/responses/Error"}));
    }
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

fn operation_id(component: &str, method: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect();
    let method = method.to_ascii_lowercase();
    match words.is_empty() {
        true => format!("{component}.{method}"),
        false => format!("{component}.{method}.{}", words.join("_")),
    }
}

fn description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "No content",
        s if s.starts_with('2') => "Success",
        s if s.starts_with('3') => "Redirect",
        _ => "An answer of the component",
    }
}

/// `schema` with each short `$ref` (a name in the component's file)
/// pointing at the component's own copy in the document.
fn qualify(schema: &Value, component: &str) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(name)) if !name.starts_with('#') => {
                        (k.clone(), Value::String(format!("#/components/schemas/{component}.{name}")))
                    }
                    _ => (k.clone(), qualify(v, component)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| qualify(v, component)).collect()),
        other => other.clone(),
    }
}

/// Any JSON value a record or an event can hold (or any but null): every
/// backend refuses the NUL character in a string (PostgreSQL cannot store
/// it), and so in a key. A component's file refers to them as
/// `{"$ref": "#/components/schemas/JsonValue"}` (or `NonNullJsonValue`).
fn json_value_schema(null: bool) -> Value {
    let no_nul = json!({"type": "string", "pattern": "^[^\\u0000]*$"});
    let scalars = if null {
        json!(["null", "boolean", "number"])
    } else {
        json!(["boolean", "number"])
    };
    json!({
        "description": "Any JSON value without the NUL character in a string or key",
        "anyOf": [
            {"type": scalars},
            no_nul,
            {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
            {"type": "object", "propertyNames": no_nul, "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}},
        ],
    })
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "A stable snake_case code to branch on"},
                    "message": {"type": "string"},
                    "request_id": {"type": "string"},
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(text, std::path::Path::new("."), |_| None).unwrap()
    }

    #[test]
    fn routes_become_operations_under_their_mount() {
        let doc = document(&manifest(
            r#"
[components.students]
wasm = "s.wasm"
mount = "/students"

[[components.students.routes]]
path = "/"
methods = ["GET", "POST"]
auth = "public"

[[components.students.routes]]
path = "/{id}"
methods = ["DELETE"]
groups = ["admin"]
"#,
        ))
        .unwrap();
        let list = &doc["paths"]["/students"]["get"];
        assert_eq!(list["security"], json!([]));
        assert_eq!(list["operationId"], "students.get");
        assert!(list["responses"]["2XX"].is_object());
        assert!(doc["paths"]["/students"]["post"]["responses"]["413"].is_object());
        let delete = &doc["paths"]["/students/{id}"]["delete"];
        assert_eq!(delete["security"], json!([{"bearer": []}]));
        assert_eq!(delete["x-corral-groups"], json!(["admin"]));
        assert!(delete["responses"]["403"].is_object());
        assert_eq!(doc["paths"]["/students/{id}"]["parameters"][0]["name"], "id");
    }

    #[test]
    fn short_refs_point_at_the_components_own_schemas() {
        assert_eq!(
            qualify(
                &json!({"type": "array", "items": {"$ref": "Note"}, "x": [{"$ref": "#/elsewhere"}]}),
                "notes"
            ),
            json!({"type": "array", "items": {"$ref": "#/components/schemas/notes.Note"}, "x": [{"$ref": "#/elsewhere"}]})
        );
    }

    #[test]
    fn path_parameters_are_single_segments_unless_declared() {
        let declared = BTreeMap::from([("n".to_owned(), json!({"type": "integer"}))]);
        let params = parameters("/a/{id}/{n}", &declared, "c");
        let pattern = params[0]["schema"]["pattern"].as_str().unwrap();
        assert_eq!(pattern, r"^(?!\.{1,2}$)[^/\\]+$");
        assert_eq!(params[1]["schema"], json!({"type": "integer"}));
    }

    #[test]
    fn required_query_filters_and_upstream_errors_are_documented() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("api.json"),
            r#"{"routes": {
                "GET /h": {"query": {"c": {"type": "string"}, "d": {}}, "required_query": ["c"]},
                "DELETE /h": {"filters": {"type": "object", "minProperties": 1}}
            }}"#,
        )
        .unwrap();
        let text = "[components.h]\nwasm = \"h.wasm\"\nschemas = \"api.json\"\nhosts = [\"api.example.com\"]\n\n\
                    [[components.h.routes]]\npath = \"/h\"\nmethods = [\"GET\", \"DELETE\"]\n";
        let doc = document(&Manifest::parse(text, dir.path(), |_| None).unwrap()).unwrap();
        let get = &doc["paths"]["/h"]["get"];
        assert_eq!(get["parameters"][0]["required"], true);
        assert_eq!(get["parameters"][1]["required"], false);
        assert!(get["responses"]["502"].is_object());
        let filters = &doc["paths"]["/h"]["delete"]["parameters"][0];
        assert_eq!(
            (&filters["style"], &filters["explode"], &filters["required"]),
            (&json!("form"), &json!(true), &json!(true))
        );

        std::fs::write(dir.path().join("api.json"), r#"{"routes": {"GET /h": {"required_query": ["c"]}}}"#).unwrap();
        let err = document(&Manifest::parse(text, dir.path(), |_| None).unwrap()).unwrap_err();
        assert!(err.contains("requires the query parameter \"c\""), "{err}");
    }

    #[test]
    fn a_schema_for_a_route_the_component_lacks_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("api.json"), r#"{"routes": {"PUT /notes": {}}}"#).unwrap();
        let text = "[components.notes]\nwasm = \"n.wasm\"\nschemas = \"api.json\"\n\n[[components.notes.routes]]\npath = \"/notes\"\nmethods = [\"GET\"]\n";
        let manifest = Manifest::parse(text, dir.path(), |_| None).unwrap();
        let err = document(&manifest).unwrap_err();
        assert!(err.contains("declares \"PUT /notes\", which is not one of its routes"), "{err}");
    }
}

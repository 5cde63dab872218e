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
//! body. Query parameters go under `"query": { "limit": { "type": "integer" } }`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::manifest::{Access, ComponentSpec, Manifest, RouteSpec};

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
}

/// The document for `manifest`, or why a component's schema file cannot be
/// used (it is unreadable, malformed, or declares a route the component
/// does not have).
pub fn document(manifest: &Manifest) -> Result<Value, String> {
    let spec = manifest.openapi.clone().unwrap_or_default();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    for component in manifest.components.values() {
        let declared = declared(component)?;
        for (name, schema) in &declared.schemas {
            schemas.insert(format!("{}.{name}", component.name), qualify(schema, &component.name));
        }
        for route in &component.routes {
            let path = full_path(&component.mount, &route.path);
            let item = paths.entry(path).or_default();
            let path_parameters = parameters(&route.path);
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
pub const SERVED_AT: &str = "/openapi.json";

fn declared(component: &ComponentSpec) -> Result<Declared, String> {
    let Some(path) = &component.schemas else {
        return Ok(Declared::default());
    };
    let name = &component.name;
    let text = std::fs::read_to_string(path).map_err(|e| format!("component \"{name}\": cannot read schemas {}: {e}", path.display()))?;
    let declared: Declared = serde_json::from_str(&text).map_err(|e| format!("component \"{name}\": schemas {}: {e}", path.display()))?;
    for key in declared.routes.keys() {
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

fn parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| match name.strip_suffix('+') {
            Some(name) => json!({"name": name, "in": "path", "required": true,
                "description": "One or more path segments", "schema": {"type": "string"}}),
            None => json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
        })
        .collect()
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
    if let Some(query) = declared.map(|d| &d.query).filter(|q| !q.is_empty()) {
        let params: Vec<Value> = query
            .iter()
            .map(|(name, schema)| json!({"name": name, "in": "query", "required": false, "schema": qualify(schema, &component.name)}))
            .collect();
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
    fn a_schema_for_a_route_the_component_lacks_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("api.json"), r#"{"routes": {"PUT /notes": {}}}"#).unwrap();
        let text = "[components.notes]\nwasm = \"n.wasm\"\nschemas = \"api.json\"\n\n[[components.notes.routes]]\npath = \"/notes\"\nmethods = [\"GET\"]\n";
        let manifest = Manifest::parse(text, dir.path(), |_| None).unwrap();
        let err = document(&manifest).unwrap_err();
        assert!(err.contains("declares \"PUT /notes\", which is not one of its routes"), "{err}");
    }
}

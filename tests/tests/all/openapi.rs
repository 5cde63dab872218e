//! The OpenAPI document of the hosted routes: `corral openapi` prints it for
//! the example manifest and it validates (openapi-spec-validator); a host
//! with `[openapi] serve = true` answers it at `GET /openapi.json`; a schema
//! file that names a route the component lacks stops the start.

use crate::common;

use std::process::Command;

use common::Host;
use common::in_process::InProcess;
use serde_json::Value;

/// `corral openapi --manifest MANIFEST`, parsed.
fn printed(manifest: &std::path::Path) -> Value {
    let out = Command::new(common::paths::corral_bin())
        .args(["openapi", "--manifest"])
        .arg(manifest)
        .output()
        .expect("running corral openapi");
    assert!(
        out.status.success(),
        "corral openapi failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("corral openapi prints JSON")
}

/// Runs openapi-spec-validator (PyPI; scripts/test installs it) on `document`.
fn validate(document: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "the document does not validate (or openapi-spec-validator is missing: scripts/test installs it):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_example_manifests_document_validates_and_covers_every_route() {
    let manifest_path = common::paths::workspace_root().join("corral.toml");
    let document = printed(&manifest_path);
    validate(&document);

    // Every route of every component, under its mount, with each method.
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let mut operations = 0;
    for (name, component) in manifest["components"].as_table().unwrap() {
        let mount = component
            .get("mount")
            .and_then(|m| m.as_str())
            .unwrap_or("");
        for route in component
            .get("routes")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let path = match route["path"].as_str().unwrap() {
                "/" if !mount.is_empty() => mount.to_owned(),
                p => format!("{mount}{}", p.replace('+', "")),
            };
            for method in route["methods"].as_array().unwrap() {
                let method = method.as_str().unwrap().to_ascii_lowercase();
                let operation = &document["paths"][&path][&method];
                assert_eq!(operation["tags"][0], name.as_str(), "{method} {path}");
                let public = route.get("auth").and_then(|a| a.as_str()) == Some("public");
                let security = if public {
                    serde_json::json!([])
                } else {
                    serde_json::json!([{"bearer": []}])
                };
                assert_eq!(operation["security"], security, "{method} {path}");
                operations += 1;
            }
        }
    }
    let documented: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .count()
        })
        .sum();
    // And the document itself, which the example serves.
    assert_eq!(
        document["paths"]["/openapi.json"]["get"]["security"],
        serde_json::json!([])
    );
    assert_eq!(documented, operations + 1);

    // The notes components declare their schemas: each gets its own copy.
    let create = &document["paths"]["/py/notes"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/notes-py.NewNote"
    );
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/notes-py.Note"
    );
    assert!(create["responses"]["401"].is_object());
    let delete = &document["paths"]["/rs/notes/{id}"]["delete"];
    assert!(delete["responses"]["204"].get("content").is_none());
    assert_eq!(
        document["paths"]["/rs/notes/{id}"]["parameters"][0]["name"],
        "id"
    );
    assert!(document["components"]["schemas"]["notes-js.Page"].is_object());
    // Every component of the example declares its schemas: each operation
    // names its success statuses, and still documents its errors.
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2') && s != "2XX"),
                "{method} {path} declares no success status"
            );
        }
    }
    let colleges = &document["paths"]["/advising/colleges"]["get"];
    assert_eq!(
        colleges["responses"]["404"]["$ref"],
        "#/components/responses/Error"
    );
}

#[tokio::test]
async fn a_host_serves_the_document_when_the_manifest_asks() {
    let dir = tempfile::tempdir().unwrap();
    let schemas = dir.path().join("api.json");
    std::fs::write(
        &schemas,
        r#"{"schemas": {"Note": {"type": "object", "required": ["uid"]}},
            "routes": {"POST /notes": {"request": {"type": "object"}, "responses": {"201": {"$ref": "Note"}}}}}"#,
    )
    .unwrap();
    let manifest =
        common::manifests::manifest_with("openapi", &[("SCHEMAS", &schemas.display().to_string())]);
    let host = InProcess::start(&manifest).await;
    let served = host.get("/openapi.json").await.expect(200);
    validate(&served);
    assert_eq!(served["info"]["title"], "Notes");
    assert_eq!(served["info"]["version"], "2026-12");
    assert_eq!(
        served["paths"]["/openapi.json"]["get"]["security"],
        serde_json::json!([])
    );
    assert_eq!(
        served["paths"]["/n/notes"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/notes.Note"
    );
    let printed = printed(&host.manifest_path());
    assert_eq!(served, printed);

    // Without `serve`, the path is just a path no component serves.
    let quiet = InProcess::start(&manifest.replace("serve = true", "serve = false")).await;
    quiet
        .get("/openapi.json")
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn a_schema_for_a_route_the_component_lacks_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let schemas = dir.path().join("api.json");
    std::fs::write(
        &schemas,
        r#"{"routes": {"DELETE /notes": {"responses": {"204": null}}}}"#,
    )
    .unwrap();
    let refusal = InProcess::refused(&format!(
        r#"
[components.notes]
wasm = "{{WASM}}/notes.wasm"
schemas = "{}"

[[components.notes.routes]]
path = "/notes"
methods = ["GET"]
"#,
        schemas.display()
    ))
    .await;
    assert!(
        refusal.contains("declares \"DELETE /notes\", which is not one of its routes"),
        "{refusal}"
    );
}

/// Schemathesis (PyPI; scripts/test installs it) against the example
/// manifest as `scripts/serve` runs it, with all its default checks: no 5xx,
/// no answer outside its declared schema or statuses, no schema-valid request
/// refused and no invalid one accepted. The two upstreams the examples call
/// are stand-ins on loopback, as nothing outside this machine is reachable:
/// a fake Alma API for `alma` and `alma-refresh`, and a webhook for the
/// notes' `publish`.
#[test]
fn schemathesis_finds_nothing_against_the_example_server() {
    use common::alma::{AlmaUser, FakeAlma, fee, loan, request};
    let alma = FakeAlma::start(&[(
        "ada",
        AlmaUser {
            loans: vec![loan("ada", "L1", "TAOCP", "2026-12-24T12:00:00Z")],
            requests: vec![request("ada", "R1", "Notes on Programming")],
            fees: vec![fee("ada", "F1", 2.5)],
        },
    )]);
    let webhook = common::webhook::Webhook::start();
    let host = Host::start(&example_with_stand_ins(&alma, webhook.port));
    let token = host.token("st-user", &["editors"]);
    let out = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(host.url("/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // Bounded, and the same cases on every run. One worker: with two,
        // Hypothesis parses sources on two threads at once, which Python
        // 3.11 before 3.11.8 can fail ("AST constructor recursion depth
        // mismatch", CPython gh-106905), failing the run for no fault of
        // the server.
        .args([
            "--max-examples",
            "10",
            "--seed",
            "20261202",
            "--workers",
            "1",
        ])
        .args(["--no-color"])
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .expect("running python3");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "Schemathesis found failures (or is missing: scripts/test installs it):\n{report}"
    );
    assert!(report.contains("Tested:"), "{report}");
}

/// The example manifest with Alma and the notes' webhook pointed at the
/// stand-ins.
fn example_with_stand_ins(alma: &common::alma::FakeAlma, webhook_port: u16) -> String {
    let mut manifest = common::manifests::example_manifest();
    let alma_host = format!("http://{}", alma.addr);
    let webhook = format!("http://127.0.0.1:{webhook_port}");
    for (name, entry) in manifest["components"].as_table_mut().unwrap() {
        let entry = entry.as_table_mut().unwrap();
        let config = entry.get_mut("config").and_then(|c| c.as_table_mut());
        match (name.as_str(), config) {
            ("alma" | "alma-refresh", Some(config)) => {
                config.insert("alma_base_url".into(), alma.base_url().into());
                config.insert("alma_api_key".into(), common::alma::API_KEY.into());
                entry.insert("hosts".into(), vec![alma_host.clone()].into());
            }
            (n, Some(config)) if n.starts_with("notes-") => {
                config.insert("webhook".into(), format!("{webhook}/notes").into());
                entry.insert("hosts".into(), vec![webhook.clone()].into());
            }
            _ => {}
        }
    }
    toml::to_string(&manifest).unwrap()
}

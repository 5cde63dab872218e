//! Properties of the pure parts of the host, checked on generated input:
//! the SQL guard, the router and the manifest loader. Case counts are
//! bounded so the file runs in seconds in a debug build; a failure prints
//! the shrunk input.

use std::collections::BTreeSet;
use std::path::Path;

use crate::Manifest;
use crate::capability::db::{SqlDialect, inspect};
use crate::core::manifest::{Access, WasmSource};
use crate::core::router::{Match, Route, Router, Template};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------
// The SQL guard
// ---------------------------------------------------------------------------

/// Tables the generated statements may use: the first two are granted.
const GRANTED: &[&str] = &["notes", "tags"];
const UNGRANTED: &[&str] = &["secrets", "accounts", "corral_cache", "sqlite_master", "pg_authid"];

fn dialects() -> impl Strategy<Value = SqlDialect> {
    prop_oneof![Just(SqlDialect::Sqlite), Just(SqlDialect::Postgres)]
}

/// How a generated statement spells one table name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spelling {
    Plain,
    Upper,
    Mixed,
    Quoted,
    /// `"NAME"` in upper case: the same table on SQLite, another on PostgreSQL.
    QuotedUpper,
    /// `` `name` `` or `[name]`: SQLite only.
    Backticks,
    Brackets,
    /// `main.name` / `public.name`: the default schema spelled out.
    DefaultSchema,
    /// `other.name`: a table in another schema or attached database.
    OtherSchema,
    /// `U&"\0073..."`: PostgreSQL only.
    UnicodeEscape,
}

fn spellings() -> impl Strategy<Value = Spelling> {
    proptest::sample::select(vec![
        Spelling::Plain,
        Spelling::Upper,
        Spelling::Mixed,
        Spelling::Quoted,
        Spelling::QuotedUpper,
        Spelling::Backticks,
        Spelling::Brackets,
        Spelling::DefaultSchema,
        Spelling::OtherSchema,
        Spelling::UnicodeEscape,
    ])
}

/// One table reference: its name and spelling.
#[derive(Debug, Clone)]
struct Ref {
    name: &'static str,
    spelling: Spelling,
}

impl Ref {
    fn sql(&self, dialect: SqlDialect) -> String {
        let n = self.name;
        match (self.spelling, dialect) {
            (Spelling::Plain, _) => n.to_owned(),
            (Spelling::Upper, _) => n.to_uppercase(),
            (Spelling::Mixed, _) => n
                .chars()
                .enumerate()
                .map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c })
                .collect(),
            (Spelling::Quoted, _) => format!("\"{n}\""),
            (Spelling::QuotedUpper, _) => format!("\"{}\"", n.to_uppercase()),
            (Spelling::Backticks, SqlDialect::Sqlite) => format!("`{n}`"),
            (Spelling::Brackets, SqlDialect::Sqlite) => format!("[{n}]"),
            (Spelling::Backticks | Spelling::Brackets, SqlDialect::Postgres) => format!("\"{n}\""),
            (Spelling::DefaultSchema, SqlDialect::Sqlite) => format!("main.{n}"),
            (Spelling::DefaultSchema, SqlDialect::Postgres) => format!("public.{n}"),
            (Spelling::OtherSchema, _) => format!("other.{n}"),
            (Spelling::UnicodeEscape, SqlDialect::Postgres) => {
                format!("U&\"\\{:04x}{}\"", n.as_bytes()[0], &n[1..])
            }
            (Spelling::UnicodeEscape, SqlDialect::Sqlite) => format!("\"{n}\""),
        }
    }

    /// The table the database resolves this reference to, as the host
    /// names tables (lower case, or `schema.name` outside the default
    /// schema); None when it names no table that can exist (an upper-case
    /// quoted name on PostgreSQL, where every table is lower case).
    fn table(&self, dialect: SqlDialect) -> Option<String> {
        match (self.spelling, dialect) {
            (Spelling::OtherSchema, _) => Some(format!("other.{}", self.name)),
            (Spelling::QuotedUpper, SqlDialect::Postgres) => None,
            _ => Some(self.name.to_owned()),
        }
    }

    /// The name this reference gives a WITH result: PostgreSQL folds only
    /// unquoted names; SQLite matches names without regard to case.
    fn cte_key(&self, dialect: SqlDialect) -> Option<String> {
        match (self.spelling, dialect) {
            (Spelling::OtherSchema | Spelling::DefaultSchema, _) => None,
            (Spelling::QuotedUpper, SqlDialect::Postgres) => Some(self.name.to_uppercase()),
            _ => Some(self.name.to_owned()),
        }
    }
}

fn refs() -> impl Strategy<Value = Ref> {
    let names: Vec<&'static str> = GRANTED.iter().chain(UNGRANTED).copied().collect();
    (proptest::sample::select(names), spellings()).prop_map(|(name, spelling)| Ref { name, spelling })
}

/// A statement over generated references, with what it truly touches.
#[derive(Debug, Clone)]
enum Shape {
    Select(Ref),
    Join(Ref, Ref),
    SubqueryIn(Ref, Ref),
    InsertSelect(Ref, Ref),
    UpdateFrom(Ref, Ref),
    DeleteWhere(Ref, Ref),
    /// `WITH <name> AS (SELECT * FROM <inner>) SELECT * FROM <outer>`.
    With {
        name: Ref,
        inner: Ref,
        outer: Ref,
    },
    /// The same WITH in front of a DELETE.
    WithDelete {
        name: Ref,
        inner: Ref,
        outer: Ref,
    },
    Union(Ref, Ref),
    Lateral(Ref, Ref),
}

/// Kept flat (one index, three references): nested strategies of many
/// variants need more stack than a debug test thread has.
fn shapes() -> impl Strategy<Value = Shape> {
    (0..10u8, refs(), refs(), refs(), any::<bool>()).prop_map(|(kind, a, b, c, same_name)| {
        // Half the WITH statements use the WITH's own name outside it.
        let c = if same_name { Ref { name: a.name, ..c } } else { c };
        shape(kind, a, b, c)
    })
}

fn shape(kind: u8, a: Ref, b: Ref, c: Ref) -> Shape {
    match kind {
        0 => Shape::Select(a),
        1 => Shape::Join(a, b),
        2 => Shape::SubqueryIn(a, b),
        3 => Shape::InsertSelect(a, b),
        4 => Shape::UpdateFrom(a, b),
        5 => Shape::DeleteWhere(a, b),
        6 => Shape::With {
            name: a,
            inner: b,
            outer: c,
        },
        7 => Shape::WithDelete {
            name: a,
            inner: b,
            outer: c,
        },
        8 => Shape::Union(a, b),
        _ => Shape::Lateral(a, b),
    }
}

impl Shape {
    /// The statement's tokens; separators go between them.
    fn tokens(&self, d: SqlDialect) -> Vec<String> {
        let s = |r: &Ref| r.sql(d);
        let words = |text: &str| text.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let mut out = Vec::new();
        match self {
            Shape::Select(a) => out.extend(words(&format!("SELECT * FROM {}", s(a)))),
            Shape::Join(a, b) => out.extend(words(&format!("SELECT x.id FROM {} x JOIN {} y ON x.id = y.id", s(a), s(b)))),
            Shape::SubqueryIn(a, b) => out.extend(words(&format!("SELECT id FROM {} WHERE id IN ( SELECT id FROM {} )", s(a), s(b)))),
            Shape::InsertSelect(a, b) => out.extend(words(&format!("INSERT INTO {} ( id ) SELECT id FROM {}", s(a), s(b)))),
            Shape::UpdateFrom(a, b) => out.extend(words(&format!("UPDATE {} SET id = ( SELECT max(id) FROM {} )", s(a), s(b)))),
            Shape::DeleteWhere(a, b) => out.extend(words(&format!("DELETE FROM {} WHERE id IN ( SELECT id FROM {} )", s(a), s(b)))),
            Shape::With { name, inner, outer } => out.extend(words(&format!(
                "WITH {} AS ( SELECT * FROM {} ) SELECT * FROM {}",
                s(name),
                s(inner),
                s(outer)
            ))),
            Shape::WithDelete { name, inner, outer } => out.extend(words(&format!(
                "WITH {} AS ( SELECT id FROM {} ) DELETE FROM {}",
                s(name),
                s(inner),
                s(outer)
            ))),
            Shape::Union(a, b) => out.extend(words(&format!("SELECT id FROM {} UNION ALL SELECT id FROM {}", s(a), s(b)))),
            Shape::Lateral(a, b) => out.extend(words(&format!(
                "SELECT * FROM {} x , LATERAL ( SELECT * FROM {} y WHERE y.id = x.id ) z",
                s(a),
                s(b)
            ))),
        }
        out
    }

    /// Every table the database reads or writes for this statement.
    fn touched(&self, d: SqlDialect) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut add = |r: &Ref| out.extend(r.table(d));
        match self {
            Shape::Select(a) => add(a),
            Shape::Join(a, b)
            | Shape::SubqueryIn(a, b)
            | Shape::InsertSelect(a, b)
            | Shape::UpdateFrom(a, b)
            | Shape::DeleteWhere(a, b)
            | Shape::Union(a, b)
            | Shape::Lateral(a, b) => {
                add(a);
                add(b);
            }
            Shape::With { name, inner, outer } => {
                add(inner);
                // An unqualified name that matches the WITH's reads the WITH result.
                let shadowed = name.cte_key(d).is_some() && name.cte_key(d) == outer.cte_key(d);
                if !shadowed {
                    add(outer);
                }
            }
            Shape::WithDelete { inner, outer, .. } => {
                // A DELETE target is always a table.
                add(inner);
                add(outer);
            }
        }
        out
    }
}

/// What separates two tokens: whitespace of any kind, or a comment.
fn separators() -> impl Strategy<Value = String> {
    proptest::sample::select(vec![
        " ".to_owned(),
        " ".to_owned(),
        " ".to_owned(),
        "\n\t ".to_owned(),
        " /* secrets */ ".to_owned(),
        " /* nested /* notes */ comment */ ".to_owned(),
        " -- FROM secrets\n".to_owned(),
    ])
}

fn statements() -> impl Strategy<Value = (SqlDialect, Shape, String)> {
    (dialects(), shapes(), proptest::collection::vec(separators(), 40)).prop_map(|(d, shape, seps)| {
        let tokens = shape.tokens(d);
        let mut sql = String::new();
        for (i, t) in tokens.iter().enumerate() {
            if i > 0 {
                sql.push_str(&seps[i % seps.len()]);
            }
            sql.push_str(t);
        }
        (d, shape, sql)
    })
}

/// SQL-ish text: keywords, names, punctuation and odd characters in any order.
fn sql_soup() -> impl Strategy<Value = String> {
    let atoms = proptest::sample::select(vec![
        "SELECT",
        "FROM",
        "WHERE",
        "WITH",
        "AS",
        "(",
        ")",
        ",",
        ";",
        "*",
        "'",
        "\"",
        "`",
        "[",
        "]",
        "--",
        "/*",
        "*/",
        "$1",
        "?",
        "secrets",
        "notes",
        "main.",
        "public.",
        "U&\"\\0073\"",
        "E'\\x00'",
        "\0",
        "TABLE",
        "VALUES",
        "INSERT",
        "INTO",
        "UPDATE",
        "SET",
        "DELETE",
        "LATERAL",
        "JOIN",
        "ON",
        "UNION",
        "ATTACH",
        "PRAGMA",
        "COPY",
        "DO",
        "$$",
        "::",
        "query_to_xml",
        "é",
        "\u{202e}",
        " ",
        "\n",
    ]);
    proptest::collection::vec(atoms, 0..40).prop_map(|atoms| atoms.concat())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn the_guard_never_panics_on_any_text(text in any::<String>(), d in dialects()) {
        let _ = inspect(&text, d);
    }

    #[test]
    fn the_guard_never_panics_on_sql_like_text(text in sql_soup(), d in dialects()) {
        let _ = inspect(&text, d);
    }

}

proptest! {
    #![proptest_config(config(3000))]

    /// A statement the guard accepts reports every table it reaches: an
    /// ungranted table always shows up among the touches, whatever its
    /// spelling, quoting, schema or the comments around it.
    #[test]
    fn an_accepted_statement_reports_every_table_it_touches((d, shape, sql) in statements()) {
        let truth = shape.touched(d);
        if let Ok(touches) = inspect(&sql, d) {
            let granted: BTreeSet<String> = GRANTED.iter().map(|s| s.to_string()).collect();
            for table in &truth {
                prop_assert!(
                    touches.tables.contains(table) || (!granted.contains(table) && touches.tables.iter().any(|t| !granted.contains(t))),
                    "{sql:?} ({d:?}) touches {table}, the guard reported {:?}", touches.tables
                );
            }
            let ungranted = truth.iter().any(|t| !granted.contains(t));
            if ungranted {
                prop_assert!(
                    touches.tables.iter().any(|t| !granted.contains(t)),
                    "{sql:?} ({d:?}) reaches an ungranted table, but the guard reported only {:?}", touches.tables
                );
            }
        }
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    for d in [SqlDialect::Sqlite, SqlDialect::Postgres] {
        for depth in [100, 10_000] {
            let sql = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
            let _ = inspect(&sql, d);
            let sql = format!("SELECT * FROM {}notes{}", "(SELECT * FROM ".repeat(depth), ")".repeat(depth));
            let _ = inspect(&sql, d);
        }
    }
}

// ---------------------------------------------------------------------------
// The router
// ---------------------------------------------------------------------------

fn literal() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,8}"
}

/// A route template: literal segments and parameters, maybe a greedy tail.
fn template_segments() -> impl Strategy<Value = Vec<Option<String>>> {
    proptest::collection::vec(prop_oneof![3 => literal().prop_map(Some), 2 => Just(None)], 0..5)
}

fn template_text(segments: &[Option<String>]) -> String {
    let mut text = String::new();
    for (i, s) in segments.iter().enumerate() {
        text.push('/');
        match s {
            Some(l) => text.push_str(l),
            None => text.push_str(&format!("{{p{i}}}")),
        }
    }
    if text.is_empty() { "/".into() } else { text }
}

/// A parameter value: any text the path rule reads one way only, so not
/// `/` or `\`, and not empty, `.` or `..` (those paths are refused).
fn param_value() -> impl Strategy<Value = String> {
    "[^/\\\\]{1,12}".prop_filter("not a dot segment", |v| v != "." && v != "..")
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn router_of(templates: &[String]) -> Option<Router<usize>> {
    let routes = templates
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Some(Route {
                template: Template::parse(t).ok()?,
                methods: vec!["GET".into()],
                target: i,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Router::new(routes).ok()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_router_never_panics(templates in proptest::collection::vec("/[a-z{}+/]{0,20}", 0..6), path in any::<String>(), method in "[A-Za-z]{0,8}") {
        let _ = Template::parse(&path);
        let templates: Vec<String> = templates.into_iter().filter(|t| Template::parse(t).is_ok()).collect();
        if let Some(router) = router_of(&templates) {
            let _ = router.find(&method, &path);
            let _ = router.methods_at(&path);
        }
    }

    /// A path built from a template, with each parameter's value
    /// percent-encoded, matches that template and gives the values back.
    #[test]
    fn matched_parameters_round_trip(segments in template_segments(), values in proptest::collection::vec(param_value(), 5)) {
        let text = template_text(&segments);
        let router = router_of(std::slice::from_ref(&text)).expect("a generated template is valid");
        let mut path = String::new();
        let mut expected = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            path.push('/');
            match s {
                Some(l) => path.push_str(l),
                None => {
                    path.push_str(&encode(&values[i]));
                    expected.push((format!("p{i}"), values[i].clone()));
                }
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        match router.find("GET", &path) {
            Match::Found(route, params) => {
                prop_assert_eq!(route.template.as_str(), text.as_str());
                prop_assert_eq!(params, expected);
            }
            other => prop_assert!(false, "{path} did not match {text}: {other:?}"),
        }
        prop_assert!(matches!(router.find("DELETE", &path), Match::MethodNotAllowed(m) if m == ["GET"]));
    }

    /// Where a literal segment and a parameter both fit, the literal wins,
    /// whatever the order the routes were given in.
    #[test]
    fn literal_segments_win(prefix in proptest::collection::vec(literal(), 0..3), literal in literal(), reversed in any::<bool>()) {
        let base: String = prefix.iter().map(|p| format!("/{p}")).collect();
        let mut templates = vec![format!("{base}/{{id}}"), format!("{base}/{literal}")];
        if reversed {
            templates.reverse();
        }
        let router = router_of(&templates).expect("the two routes do not overlap");
        match router.find("GET", &format!("{base}/{literal}")) {
            Match::Found(route, params) => {
                prop_assert_eq!(route.template.as_str(), format!("{base}/{literal}"));
                prop_assert!(params.is_empty());
            }
            other => prop_assert!(false, "{other:?}"),
        }
        match router.find("GET", &format!("{base}/{literal}x")) {
            Match::Found(route, params) => {
                prop_assert_eq!(route.template.as_str(), format!("{base}/{{id}}"));
                prop_assert_eq!(params, vec![("id".to_string(), format!("{literal}x"))]);
            }
            other => prop_assert!(false, "{other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// The manifest loader
// ---------------------------------------------------------------------------

fn no_env(_: &str) -> Option<String> {
    None
}

/// TOML-ish text: manifest keys, tables and values in any order.
fn toml_soup() -> impl Strategy<Value = String> {
    let lines = proptest::sample::select(vec![
        "[defaults]",
        "memory_mb = 0",
        "memory_mb = 99999999999",
        "timeout_ms = -1",
        "max_body_bytes = 18446744073709551616",
        "[components.a]",
        "[components.\"\"]",
        "[components.A]",
        "wasm = \"a.wasm\"",
        "wasm = \"registry:a\"",
        "version = \"zz\"",
        "mount = \"/\"",
        "mount = \"//\"",
        "mount = \"x\"",
        "tables = [\"t\", \"corral_cache\", \"T\", \"\"]",
        "caches = [\"c\"]",
        "hosts = [\"https://[::1]:99999\", \"http://\", \"*\", \"a:b:c\"]",
        "[[components.a.routes]]",
        "path = \"/{x}/{x}\"",
        "path = \"/{rest+}/more\"",
        "path = \"/a/{id}\"",
        "path = \"\"",
        "methods = [\"GET\", \"get\", \"BREW\"]",
        "methods = []",
        "auth = \"public\"",
        "auth = \"caller\"",
        "groups = [\"g\"]",
        "[components.a.config]",
        "k = \"${env:\"",
        "k = \"${env:A:-}\"",
        "k = \"${env:${env:B}}\"",
        "k = \"${ssm:/x}\"",
        "[[components.a.events]]",
        "queue = \"q\"",
        "table = \"t\"",
        "batch_size = 0",
        "[backends.db]",
        "kind = \"postgres\"",
        "url = \"${env:DB}\"",
        "max_connections = 0",
        "[backends.auth]",
        "kind = \"cognito\"",
        "clients = []",
        "[cors]",
        "allow_origins = [\"*\"]",
        "allow_credentials = true",
        "x = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "= \"\"",
        "\u{0}",
    ]);
    proptest::collection::vec(lines, 0..25).prop_map(|lines| lines.join("\n"))
}

/// A generated component: what a manifest says about it.
#[derive(Debug, Clone)]
struct ComponentText {
    name: String,
    mount: String,
    tables: BTreeSet<String>,
    config: std::collections::BTreeMap<String, String>,
    routes: Vec<(String, Vec<&'static str>, bool)>,
}

fn components() -> impl Strategy<Value = Vec<ComponentText>> {
    let component = (
        "[a-z][a-z0-9_]{0,10}",
        proptest::option::of("[a-z]{1,6}"),
        proptest::collection::btree_set("[a-z][a-z0-9_]{0,10}", 0..4),
        proptest::collection::btree_map("[a-z_]{1,8}", "[^$\\\\\"\\p{C}]{0,20}", 0..4),
        proptest::collection::vec(
            (
                template_segments(),
                proptest::sample::subsequence(vec!["GET", "POST", "PUT", "PATCH", "DELETE"], 1..=5),
                any::<bool>(),
            ),
            0..4,
        ),
    )
        .prop_map(|(name, mount, tables, config, routes)| ComponentText {
            name,
            mount: mount.map(|m| format!("/{m}")).unwrap_or_default(),
            tables: tables
                .into_iter()
                .filter(|t| !t.starts_with("sqlite_") && !t.starts_with("corral_"))
                .collect(),
            config,
            routes: routes.into_iter().map(|(s, m, public)| (template_text(&s), m, public)).collect(),
        });
    proptest::collection::vec(component, 0..4)
}

fn manifest_text(components: &[ComponentText]) -> String {
    let mut text = String::from("[defaults]\nmemory_mb = 32\n");
    for c in components {
        let tables: Vec<String> = c.tables.iter().map(|t| format!("\"{t}\"")).collect();
        text.push_str(&format!(
            "\n[components.{}]\nwasm = \"{}.wasm\"\nmount = \"{}\"\ntables = [{}]\n",
            c.name,
            c.name,
            c.mount,
            tables.join(", ")
        ));
        if !c.config.is_empty() {
            text.push_str(&format!("[components.{}.config]\n", c.name));
            for (k, v) in &c.config {
                text.push_str(&format!("{k} = \"{v}\"\n"));
            }
        }
        for (path, methods, public) in &c.routes {
            let methods: Vec<String> = methods.iter().map(|m| format!("\"{}\"", m.to_lowercase())).collect();
            text.push_str(&format!(
                "[[components.{}.routes]]\npath = \"{path}\"\nmethods = [{}]\nauth = \"{}\"\n",
                c.name,
                methods.join(", "),
                if *public { "public" } else { "caller" }
            ));
        }
    }
    text
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_manifest_loader_never_panics_on_any_text(text in any::<String>()) {
        let _ = Manifest::parse(&text, Path::new("/base"), no_env);
    }

    #[test]
    fn the_manifest_loader_never_panics_on_toml_like_text(text in toml_soup()) {
        let _ = Manifest::parse(&text, Path::new("/base"), no_env);
        let _ = Manifest::parse(&text, Path::new("/base"), |name: &str| Some(format!("${{env:{name}}}")));
    }

    /// A manifest written from generated components reads back as exactly
    /// those components: names, files, mounts, grants, config and routes.
    #[test]
    fn a_written_manifest_reads_back(components in components()) {
        let mut by_name = std::collections::BTreeMap::new();
        for c in components {
            by_name.entry(c.name.clone()).or_insert(c);
        }
        let text = manifest_text(&by_name.values().cloned().collect::<Vec<_>>());
        let manifest = Manifest::parse(&text, Path::new("/base"), no_env)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(manifest.components.len(), by_name.len());
        for (name, c) in &by_name {
            let spec = &manifest.components[name];
            prop_assert_eq!(&spec.wasm, &WasmSource::File(Path::new("/base").join(format!("{name}.wasm"))));
            prop_assert_eq!(&spec.mount, &c.mount);
            prop_assert_eq!(&spec.grants.tables, &c.tables);
            prop_assert_eq!(spec.limits.memory_mb, 32);
            prop_assert_eq!(&spec.config, &c.config);
            prop_assert_eq!(spec.routes.len(), c.routes.len());
            for (route, (path, methods, public)) in spec.routes.iter().zip(&c.routes) {
                prop_assert_eq!(&route.path, path);
                prop_assert_eq!(&route.methods, methods);
                prop_assert_eq!(route.access, if *public { Access::Public } else { Access::Caller });
            }
        }
    }
}

//! The records API's SQL, written once for both backends. The dialects
//! differ in their placeholders (`?` or `$n`), the type of the document
//! column, how a filter reads a field of the document, and how an update
//! merges: SQLite's backend merges in Rust and writes the whole document,
//! PostgreSQL's statement merges itself.

use serde_json::{Map, Value as Json};

use super::SqlDialect;
use super::records::{AUDIT_FIELDS, Condition, Filter, JsonKind, Stamp, StoredRecord};

/// A statement and the values to bind to it, in order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sql {
    /// The statement.
    pub text: String,
    /// One per placeholder, in the order of their numbers.
    pub params: Vec<Param>,
}

/// A value bound to a records statement.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    /// Text; none is a NULL of type text.
    Text(Option<String>),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A JSON value, bound as `jsonb` (PostgreSQL's filters).
    Json(Json),
}

/// The columns of a records table, in the order the statements write them.
const COLUMNS: &str = "uid, created_at, last_updated_at, creator_uid, last_updater_uid, data";

/// The columns as read. PostgreSQL's document is read as text: `json` keeps
/// the text as written (field order, `-0.0`), which `jsonb` would normalize.
fn read_columns(dialect: SqlDialect) -> &'static str {
    match dialect {
        SqlDialect::Sqlite => COLUMNS,
        SqlDialect::Postgres => "uid, created_at, last_updated_at, creator_uid, last_updater_uid, data::text AS data",
    }
}

/// Collects the parameters of one statement, writing each one's placeholder.
struct Params {
    dialect: SqlDialect,
    list: Vec<Param>,
}

impl Params {
    fn new(dialect: SqlDialect) -> Params {
        Params { dialect, list: Vec::new() }
    }

    /// Adds `param`; returns its placeholder.
    fn add(&mut self, param: Param) -> String {
        self.list.push(param);
        match self.dialect {
            SqlDialect::Sqlite => "?".into(),
            SqlDialect::Postgres => format!("${}", self.list.len()),
        }
    }

    fn text(&mut self, text: &str) -> String {
        self.add(Param::Text(Some(text.to_owned())))
    }

    /// Adds a JSON document, bound as text: PostgreSQL casts it to `json`,
    /// which keeps it as written.
    fn document(&mut self, data: &Map<String, Json>) -> String {
        let placeholder = self.add(Param::Text(Some(Json::Object(data.clone()).to_string())));
        match self.dialect {
            SqlDialect::Sqlite => placeholder,
            SqlDialect::Postgres => format!("{placeholder}::json"),
        }
    }

    fn sql(self, text: String) -> Sql {
        Sql { text, params: self.list }
    }
}

/// Makes the records table `table` unless it exists.
pub(super) fn create_table(dialect: SqlDialect, table: &str) -> String {
    let document = match dialect {
        SqlDialect::Sqlite => "TEXT",
        SqlDialect::Postgres => "JSON",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS \"{table}\" (uid TEXT PRIMARY KEY, created_at TEXT NOT NULL, \
         last_updated_at TEXT NOT NULL, creator_uid TEXT, last_updater_uid TEXT, data {document} NOT NULL)"
    )
}

/// Stores a new record.
pub(super) fn insert(dialect: SqlDialect, table: &str, r: &StoredRecord) -> Sql {
    let mut p = Params::new(dialect);
    let values = [
        p.text(&r.uid),
        p.text(&r.created_at),
        p.text(&r.last_updated_at),
        p.add(Param::Text(r.creator_uid.clone())),
        p.add(Param::Text(r.last_updater_uid.clone())),
        p.document(&r.data),
    ]
    .join(", ");
    p.sql(format!("INSERT INTO \"{table}\" ({COLUMNS}) VALUES ({values})"))
}

/// Reads the record with this uid.
pub(super) fn get(dialect: SqlDialect, table: &str, uid: &str) -> Sql {
    let mut p = Params::new(dialect);
    let uid = p.text(uid);
    p.sql(format!("SELECT {} FROM \"{table}\" WHERE uid = {uid}", read_columns(dialect)))
}

/// Stamps the record with this uid and changes its document.
///
/// On SQLite `data` is the whole new document, already merged by
/// [`StoredRecord::apply`]: the backend reads and writes in one `IMMEDIATE`
/// transaction. On PostgreSQL `data` is the changes, which the statement
/// merges into the stored document itself, so it reads the row it writes
/// (under a concurrent update PostgreSQL evaluates it again on the newer
/// row); it returns the record.
pub(super) fn update(dialect: SqlDialect, table: &str, uid: &str, stamp: &Stamp, data: &Map<String, Json>) -> Sql {
    let mut p = Params::new(dialect);
    let now = p.text(&stamp.now);
    let caller = p.add(Param::Text(stamp.caller.clone()));
    let text = match dialect {
        SqlDialect::Sqlite => {
            let data = p.document(data);
            let uid = p.text(uid);
            format!("UPDATE \"{table}\" SET last_updated_at = {now}, last_updater_uid = {caller}, data = {data} WHERE uid = {uid}")
        }
        SqlDialect::Postgres => {
            // Audit fields are ignored, as `apply` does.
            let changes: Map<String, Json> = data
                .iter()
                .filter(|(k, _)| !AUDIT_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let merged = merged_data(&p.document(&changes));
            let uid = p.text(uid);
            format!(
                "UPDATE \"{table}\" SET last_updated_at = {now}, last_updater_uid = {caller}, data = {merged} WHERE uid = {uid} RETURNING {}",
                read_columns(dialect)
            )
        }
    };
    p.sql(text)
}

/// PostgreSQL: `data` with the `changes` merged as [`StoredRecord::apply`]
/// does, keeping the document's field order: a changed field keeps its
/// place, a null removes it, a new one comes last in the order of the
/// changes.
fn merged_data(changes: &str) -> String {
    format!(
        "(SELECT COALESCE(json_object_agg(key, value ORDER BY place), '{{}}'::json) FROM (\
         SELECT old.key, COALESCE(change.value, old.value) AS value, old.place \
         FROM json_each(data) WITH ORDINALITY AS old(key, value, place) \
         LEFT JOIN json_each({changes}) AS change(key, value) ON change.key = old.key \
         WHERE change.value IS NULL OR json_typeof(change.value) <> 'null' \
         UNION ALL \
         SELECT change.key, change.value, 4294967296 + change.place \
         FROM json_each({changes}) WITH ORDINALITY AS change(key, value, place) \
         WHERE json_typeof(change.value) <> 'null' AND change.key NOT IN (SELECT json_object_keys(data))) AS merged)"
    )
}

/// Deletes the record with this uid.
pub(super) fn delete(dialect: SqlDialect, table: &str, uid: &str) -> Sql {
    let mut p = Params::new(dialect);
    let uid = p.text(uid);
    p.sql(format!("DELETE FROM \"{table}\" WHERE uid = {uid}"))
}

/// Deletes the records matching every filter.
pub(super) fn delete_where(dialect: SqlDialect, table: &str, filters: &[Filter]) -> Sql {
    let mut p = Params::new(dialect);
    let condition = matching(&mut p, filters);
    p.sql(format!("DELETE FROM \"{table}\" WHERE {condition}"))
}

/// Reads up to `limit` records matching every filter, with a uid after
/// `after`, by uid.
pub(super) fn list(dialect: SqlDialect, table: &str, filters: &[Filter], limit: u32, after: Option<&str>) -> Sql {
    let mut p = Params::new(dialect);
    let mut condition = matching(&mut p, filters);
    if let Some(after) = after {
        condition.push_str(&format!(" AND uid > {}", p.text(after)));
    }
    let limit = p.add(Param::Integer(limit.into()));
    p.sql(format!(
        "SELECT {} FROM \"{table}\" WHERE {condition} ORDER BY uid LIMIT {limit}",
        read_columns(dialect)
    ))
}

/// The condition that every filter holds (see [`Filter::condition`]).
fn matching(p: &mut Params, filters: &[Filter]) -> String {
    let not = |negated: bool| if negated { "NOT " } else { "" };
    let mut sql = String::from("TRUE");
    for f in filters {
        let field = &f.field;
        if f.is_audit_field() {
            match f.condition() {
                Condition::Null { negated } => sql.push_str(&format!(" AND {field} IS {}NULL", not(negated))),
                _ => {
                    let value = p.add(audit_param(p.dialect, &f.value));
                    sql.push_str(&format!(" AND {field} {} {value}", f.operator()));
                }
            }
            continue;
        }
        // The field's value, what is NULL only when the field is absent, its
        // JSON type, and the test of that type for the filter value's.
        let (value, present, kind, kind_test) = match p.dialect {
            // `json_extract` is NULL for a JSON null too; `json_type` is 'null'.
            SqlDialect::Sqlite => {
                let kind = format!("json_type(data, '$.{field}')");
                let test = match f.kind() {
                    JsonKind::String => "= 'text'",
                    JsonKind::Number => "IN ('integer', 'real')",
                    JsonKind::Boolean => "IN ('true', 'false')",
                };
                (format!("json_extract(data, '$.{field}')"), kind.clone(), kind, test)
            }
            SqlDialect::Postgres => {
                let value = format!("(data->'{field}')::jsonb");
                let test = match f.kind() {
                    JsonKind::String => "= 'string'",
                    JsonKind::Number => "= 'number'",
                    JsonKind::Boolean => "= 'boolean'",
                };
                (value.clone(), value.clone(), format!("jsonb_typeof({value})"), test)
            }
        };
        let same_kind = format!("{kind} {kind_test}");
        match f.condition() {
            Condition::Null { negated } => sql.push_str(&format!(" AND {value} IS {}NULL", not(negated))),
            Condition::Compare { operator } => {
                let param = p.add(data_param(p.dialect, &f.value));
                sql.push_str(&format!(" AND ({same_kind} AND {value} {operator} {param})"));
            }
            Condition::NotEqual => {
                let param = p.add(data_param(p.dialect, &f.value));
                sql.push_str(&format!(" AND ({present} IS NOT NULL AND NOT ({same_kind} AND {value} = {param}))"));
            }
        }
    }
    sql
}

/// A filter value compared with an audit column (text).
fn audit_param(dialect: SqlDialect, value: &Json) -> Param {
    match dialect {
        SqlDialect::Sqlite => sqlite_value(value),
        // Compared as text: a string as itself, anything else as its JSON.
        SqlDialect::Postgres => Param::Text(Some(value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string()))),
    }
}

/// A filter value compared with a field of the document.
fn data_param(dialect: SqlDialect, value: &Json) -> Param {
    match dialect {
        SqlDialect::Sqlite => sqlite_value(value),
        SqlDialect::Postgres => Param::Json(value.clone()),
    }
}

/// A JSON scalar as SQLite's `json_extract` gives it: booleans are 0 and 1.
fn sqlite_value(value: &Json) -> Param {
    match value {
        Json::Bool(b) => Param::Integer(*b as i64),
        Json::Number(n) => n
            .as_i64()
            .map(Param::Integer)
            .unwrap_or_else(|| Param::Float(n.as_f64().unwrap_or(f64::NAN))),
        Json::String(s) => Param::Text(Some(s.clone())),
        // Never bound: a null filter is `IS NULL`, and arrays and objects are refused.
        Json::Null | Json::Array(_) | Json::Object(_) => Param::Text(None),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::capability::db::Comparison;

    const SQLITE: SqlDialect = SqlDialect::Sqlite;
    const PG: SqlDialect = SqlDialect::Postgres;
    const SQLITE_COLUMNS: &str = "uid, created_at, last_updated_at, creator_uid, last_updater_uid, data";
    const PG_COLUMNS: &str = "uid, created_at, last_updated_at, creator_uid, last_updater_uid, data::text AS data";

    fn filter(field: &str, comparison: Comparison, value: &str) -> Filter {
        Filter::parse(field, comparison, value).unwrap()
    }

    fn text(s: &str) -> Param {
        Param::Text(Some(s.into()))
    }

    fn record() -> StoredRecord {
        StoredRecord {
            uid: "0189aaaa-0000-7000-8000-000000000000".into(),
            created_at: "2030-01-01T00:00:00.000Z".into(),
            last_updated_at: "2030-01-02T00:00:00.000Z".into(),
            creator_uid: Some("alice".into()),
            last_updater_uid: None,
            data: json!({"name": "Ada", "age": 36}).as_object().unwrap().clone(),
        }
    }

    #[test]
    fn tables_are_created_with_the_dialects_document_type() {
        let columns =
            "uid TEXT PRIMARY KEY, created_at TEXT NOT NULL, last_updated_at TEXT NOT NULL, creator_uid TEXT, last_updater_uid TEXT";
        assert_eq!(
            create_table(SQLITE, "people"),
            format!("CREATE TABLE IF NOT EXISTS \"people\" ({columns}, data TEXT NOT NULL)")
        );
        assert_eq!(
            create_table(PG, "people"),
            format!("CREATE TABLE IF NOT EXISTS \"people\" ({columns}, data JSON NOT NULL)")
        );
    }

    #[test]
    fn insert_get_and_delete() {
        let r = record();
        let params = vec![
            text(&r.uid),
            text("2030-01-01T00:00:00.000Z"),
            text("2030-01-02T00:00:00.000Z"),
            text("alice"),
            Param::Text(None),
            text(r#"{"name":"Ada","age":36}"#),
        ];
        let sqlite = insert(SQLITE, "people", &r);
        assert_eq!(
            sqlite.text,
            format!("INSERT INTO \"people\" ({SQLITE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)")
        );
        assert_eq!(sqlite.params, params);
        let pg = insert(PG, "people", &r);
        assert_eq!(
            pg.text,
            format!("INSERT INTO \"people\" ({SQLITE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6::json)")
        );
        assert_eq!(pg.params, params);

        let uid = vec![text("u1")];
        assert_eq!(
            get(SQLITE, "people", "u1"),
            Sql {
                text: format!("SELECT {SQLITE_COLUMNS} FROM \"people\" WHERE uid = ?"),
                params: uid.clone(),
            }
        );
        assert_eq!(
            get(PG, "people", "u1"),
            Sql {
                text: format!("SELECT {PG_COLUMNS} FROM \"people\" WHERE uid = $1"),
                params: uid.clone(),
            }
        );
        assert_eq!(
            delete(SQLITE, "people", "u1"),
            Sql {
                text: "DELETE FROM \"people\" WHERE uid = ?".into(),
                params: uid.clone(),
            }
        );
        assert_eq!(
            delete(PG, "people", "u1"),
            Sql {
                text: "DELETE FROM \"people\" WHERE uid = $1".into(),
                params: uid,
            }
        );
    }

    #[test]
    fn sqlite_writes_the_merged_document_and_postgres_merges_the_changes() {
        let stamp = Stamp {
            now: "2030-01-03T00:00:00.000Z".into(),
            caller: Some("bob".into()),
        };
        let data = json!({"name": "Ada", "creator_uid": "mallory", "age": null});
        let data = data.as_object().unwrap();

        let sqlite = update(SQLITE, "people", "u1", &stamp, data);
        assert_eq!(
            sqlite.text,
            "UPDATE \"people\" SET last_updated_at = ?, last_updater_uid = ?, data = ? WHERE uid = ?"
        );
        // The document as given: keys named like audit fields in it are data.
        assert_eq!(
            sqlite.params,
            [
                text("2030-01-03T00:00:00.000Z"),
                text("bob"),
                text(r#"{"name":"Ada","creator_uid":"mallory","age":null}"#),
                text("u1")
            ]
        );

        let pg = update(PG, "people", "u1", &stamp, data);
        let merged = "(SELECT COALESCE(json_object_agg(key, value ORDER BY place), '{}'::json) FROM (\
            SELECT old.key, COALESCE(change.value, old.value) AS value, old.place \
            FROM json_each(data) WITH ORDINALITY AS old(key, value, place) \
            LEFT JOIN json_each($3::json) AS change(key, value) ON change.key = old.key \
            WHERE change.value IS NULL OR json_typeof(change.value) <> 'null' \
            UNION ALL \
            SELECT change.key, change.value, 4294967296 + change.place \
            FROM json_each($3::json) WITH ORDINALITY AS change(key, value, place) \
            WHERE json_typeof(change.value) <> 'null' AND change.key NOT IN (SELECT json_object_keys(data))) AS merged)";
        assert_eq!(
            pg.text,
            format!(
                "UPDATE \"people\" SET last_updated_at = $1, last_updater_uid = $2, data = {merged} WHERE uid = $4 RETURNING {PG_COLUMNS}"
            )
        );
        // The changes without audit fields; a null stays, to remove the field.
        assert_eq!(
            pg.params,
            [
                text("2030-01-03T00:00:00.000Z"),
                text("bob"),
                text(r#"{"name":"Ada","age":null}"#),
                text("u1")
            ]
        );

        let anonymous = Stamp { caller: None, ..stamp };
        assert_eq!(update(PG, "people", "u1", &anonymous, data).params[1], Param::Text(None));
    }

    /// Each kind of filter alone: its condition and its parameter on SQLite,
    /// then on PostgreSQL.
    #[test]
    fn each_kind_of_filter() {
        use Comparison::*;
        type Case = (Filter, &'static str, Option<Param>, &'static str, Option<Param>);
        let cases: Vec<Case> = vec![
            (
                filter("name", Eq, r#""Ada""#),
                "(json_type(data, '$.name') = 'text' AND json_extract(data, '$.name') = ?)",
                Some(text("Ada")),
                "(jsonb_typeof((data->'name')::jsonb) = 'string' AND (data->'name')::jsonb = $1)",
                Some(Param::Json(json!("Ada"))),
            ),
            (
                filter("name", Ge, r#""b""#),
                "(json_type(data, '$.name') = 'text' AND json_extract(data, '$.name') >= ?)",
                Some(text("b")),
                "(jsonb_typeof((data->'name')::jsonb) = 'string' AND (data->'name')::jsonb >= $1)",
                Some(Param::Json(json!("b"))),
            ),
            (
                filter("age", Lt, "3"),
                "(json_type(data, '$.age') IN ('integer', 'real') AND json_extract(data, '$.age') < ?)",
                Some(Param::Integer(3)),
                "(jsonb_typeof((data->'age')::jsonb) = 'number' AND (data->'age')::jsonb < $1)",
                Some(Param::Json(json!(3))),
            ),
            (
                filter("age", Le, "2.5"),
                "(json_type(data, '$.age') IN ('integer', 'real') AND json_extract(data, '$.age') <= ?)",
                Some(Param::Float(2.5)),
                "(jsonb_typeof((data->'age')::jsonb) = 'number' AND (data->'age')::jsonb <= $1)",
                Some(Param::Json(json!(2.5))),
            ),
            (
                filter("age", Gt, "-1"),
                "(json_type(data, '$.age') IN ('integer', 'real') AND json_extract(data, '$.age') > ?)",
                Some(Param::Integer(-1)),
                "(jsonb_typeof((data->'age')::jsonb) = 'number' AND (data->'age')::jsonb > $1)",
                Some(Param::Json(json!(-1))),
            ),
            (
                filter("active", Eq, "true"),
                "(json_type(data, '$.active') IN ('true', 'false') AND json_extract(data, '$.active') = ?)",
                Some(Param::Integer(1)),
                "(jsonb_typeof((data->'active')::jsonb) = 'boolean' AND (data->'active')::jsonb = $1)",
                Some(Param::Json(json!(true))),
            ),
            (
                filter("age", Ne, "3"),
                "(json_type(data, '$.age') IS NOT NULL AND NOT (json_type(data, '$.age') IN ('integer', 'real') \
                 AND json_extract(data, '$.age') = ?))",
                Some(Param::Integer(3)),
                "((data->'age')::jsonb IS NOT NULL AND NOT (jsonb_typeof((data->'age')::jsonb) = 'number' \
                 AND (data->'age')::jsonb = $1))",
                Some(Param::Json(json!(3))),
            ),
            (
                filter("nick", Eq, "null"),
                "json_extract(data, '$.nick') IS NULL",
                None,
                "(data->'nick')::jsonb IS NULL",
                None,
            ),
            (
                filter("nick", Ne, "null"),
                "json_extract(data, '$.nick') IS NOT NULL",
                None,
                "(data->'nick')::jsonb IS NOT NULL",
                None,
            ),
            // Audit fields are columns, compared as they are.
            (
                filter("creator_uid", Eq, r#""alice""#),
                "creator_uid = ?",
                Some(text("alice")),
                "creator_uid = $1",
                Some(text("alice")),
            ),
            (
                filter("last_updater_uid", Ne, r#""bob""#),
                "last_updater_uid <> ?",
                Some(text("bob")),
                "last_updater_uid <> $1",
                Some(text("bob")),
            ),
            (
                filter("created_at", Gt, r#""2030""#),
                "created_at > ?",
                Some(text("2030")),
                "created_at > $1",
                Some(text("2030")),
            ),
            (
                filter("creator_uid", Eq, "7"),
                "creator_uid = ?",
                Some(Param::Integer(7)),
                "creator_uid = $1",
                Some(text("7")),
            ),
            (
                filter("creator_uid", Eq, "null"),
                "creator_uid IS NULL",
                None,
                "creator_uid IS NULL",
                None,
            ),
            (filter("uid", Ne, "null"), "uid IS NOT NULL", None, "uid IS NOT NULL", None),
        ];
        for (f, sqlite, sqlite_param, pg, pg_param) in cases {
            let generated = delete_where(SQLITE, "t", std::slice::from_ref(&f));
            assert_eq!(generated.text, format!("DELETE FROM \"t\" WHERE TRUE AND {sqlite}"), "{f:?}");
            assert_eq!(generated.params, Vec::from_iter(sqlite_param), "{f:?}");
            let generated = delete_where(PG, "t", std::slice::from_ref(&f));
            assert_eq!(generated.text, format!("DELETE FROM \"t\" WHERE TRUE AND {pg}"), "{f:?}");
            assert_eq!(generated.params, Vec::from_iter(pg_param), "{f:?}");
        }
    }

    #[test]
    fn lists_number_filters_then_cursor_then_limit() {
        let cursor = "0189aaaa-0000-7000-8000-000000000000";
        assert_eq!(
            list(SQLITE, "t", &[], 10, None),
            Sql {
                text: format!("SELECT {SQLITE_COLUMNS} FROM \"t\" WHERE TRUE ORDER BY uid LIMIT ?"),
                params: vec![Param::Integer(10)],
            }
        );
        assert_eq!(
            list(PG, "t", &[], 10, Some(cursor)),
            Sql {
                text: format!("SELECT {PG_COLUMNS} FROM \"t\" WHERE TRUE AND uid > $1 ORDER BY uid LIMIT $2"),
                params: vec![text(cursor), Param::Integer(10)],
            }
        );

        // A null filter takes no parameter, so the numbers skip nothing.
        let filters = [
            filter("nick", Comparison::Ne, "null"),
            filter("age", Comparison::Ge, "18"),
            filter("creator_uid", Comparison::Eq, r#""alice""#),
        ];
        let sqlite = list(SQLITE, "t", &filters, 50, Some(cursor));
        assert_eq!(
            sqlite.text,
            format!(
                "SELECT {SQLITE_COLUMNS} FROM \"t\" WHERE TRUE AND json_extract(data, '$.nick') IS NOT NULL \
                 AND (json_type(data, '$.age') IN ('integer', 'real') AND json_extract(data, '$.age') >= ?) \
                 AND creator_uid = ? AND uid > ? ORDER BY uid LIMIT ?"
            )
        );
        assert_eq!(sqlite.params, [Param::Integer(18), text("alice"), text(cursor), Param::Integer(50)]);
        let pg = list(PG, "t", &filters, 50, Some(cursor));
        assert_eq!(
            pg.text,
            format!(
                "SELECT {PG_COLUMNS} FROM \"t\" WHERE TRUE AND (data->'nick')::jsonb IS NOT NULL \
                 AND (jsonb_typeof((data->'age')::jsonb) = 'number' AND (data->'age')::jsonb >= $1) \
                 AND creator_uid = $2 AND uid > $3 ORDER BY uid LIMIT $4"
            )
        );
        assert_eq!(pg.params, [Param::Json(json!(18)), text("alice"), text(cursor), Param::Integer(50)]);
    }

    /// What the generated filters match, run on SQLite through its backend.
    #[tokio::test]
    async fn filters_match_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::capability::db::Sqlite::open(&dir.path().join("db.sqlite")).await.unwrap();
        filters_match(&db).await;
    }

    async fn filters_match(db: &dyn crate::capability::db::Database) {
        let records = [
            ("a", json!({"name": "Ada", "age": 36, "active": true}), "alice"),
            ("b", json!({"name": "bob", "age": "36", "active": 1}), "alice"),
            ("c", json!({"name": "Cy", "age": 2.5, "nick": "c"}), "bob"),
            ("d", json!({"nick": "d", "active": false}), "bob"),
        ];
        for (key, data, caller) in records {
            let mut data = data.as_object().unwrap().clone();
            data.insert("key".into(), key.into());
            let record = StoredRecord::new(data, &Stamp::now(Some(caller.into())));
            db.insert("people", &record).await.unwrap();
        }
        let keys = |found: Vec<StoredRecord>| {
            let mut keys: Vec<String> = found.iter().map(|r| r.data["key"].as_str().unwrap().to_owned()).collect();
            keys.sort();
            keys.join(",")
        };

        use Comparison::*;
        let cases: Vec<(Vec<Filter>, &str)> = vec![
            (vec![], "a,b,c,d"),
            // A number is not a string, and 1 is not true.
            (vec![filter("age", Eq, "36")], "a"),
            (vec![filter("age", Eq, r#""36""#)], "b"),
            (vec![filter("age", Gt, "2")], "a,c"),
            (vec![filter("age", Le, "2.5")], "c"),
            (vec![filter("age", Lt, "100")], "a,c"),
            (vec![filter("age", Ge, "36")], "a"),
            // `ne` matches every present value that is not equal.
            (vec![filter("age", Ne, "36")], "b,c"),
            (vec![filter("name", Lt, r#""a""#)], "a,c"),
            (vec![filter("name", Ge, r#""b""#)], "b"),
            (vec![filter("active", Eq, "true")], "a"),
            (vec![filter("active", Eq, "false")], "d"),
            (vec![filter("active", Ne, "true")], "b,d"),
            (vec![filter("nick", Eq, "null")], "a,b"),
            (vec![filter("nick", Ne, "null")], "c,d"),
            (vec![filter("creator_uid", Eq, r#""alice""#)], "a,b"),
            (vec![filter("creator_uid", Ne, r#""alice""#)], "c,d"),
            (vec![filter("last_updater_uid", Eq, "null")], ""),
            (
                vec![
                    filter("creator_uid", Eq, r#""bob""#),
                    filter("nick", Ne, "null"),
                    filter("age", Ne, "1"),
                ],
                "c",
            ),
        ];
        for (filters, expected) in cases {
            let found = db.list("people", &filters, 100, None).await.unwrap();
            assert_eq!(keys(found), expected, "{filters:?}");
        }

        // Pages by uid: the cursor is the last uid of the page before.
        let all = db.list("people", &[], 100, None).await.unwrap();
        let first = db.list("people", &[], 3, None).await.unwrap();
        let rest = db.list("people", &[], 3, Some(&first[2].uid)).await.unwrap();
        assert_eq!([first, rest].concat(), all);
        assert!(all.windows(2).all(|w| w[0].uid < w[1].uid));

        assert_eq!(db.delete_where("people", &[filter("active", Ne, "null")]).await.unwrap(), 3);
        assert_eq!(keys(db.list("people", &[], 100, None).await.unwrap()), "c");
    }
}

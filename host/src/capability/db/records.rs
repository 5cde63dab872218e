//! The backend-independent half of the records API: names, stamps, merges,
//! filters and cursors. Backends only store and load [`StoredRecord`]s.

use serde_json::{Map, Value as Json};

use super::{BackendError, Comparison};

/// The fields the host owns on every record.
pub(crate) const AUDIT_FIELDS: [&str; 5] = ["uid", "created_at", "last_updated_at", "creator_uid", "last_updater_uid"];

/// A record as a backend keeps it: the audit columns and the other fields.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// Time-ordered UUID (v7): sorting by it is creation order.
    pub uid: String,
    /// RFC 3339 UTC timestamp.
    pub created_at: String,
    /// RFC 3339 UTC timestamp.
    pub last_updated_at: String,
    /// The subject of the caller that created it.
    pub creator_uid: Option<String>,
    /// The subject of the caller that changed it last.
    pub last_updater_uid: Option<String>,
    /// Every other field.
    pub data: Map<String, Json>,
}

/// When and by whom a change is made.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// RFC 3339 UTC, milliseconds.
    pub now: String,
    /// The verified caller's subject.
    pub caller: Option<String>,
}

impl Stamp {
    /// A stamp for now by `caller`.
    pub fn now(caller: Option<String>) -> Stamp {
        Stamp {
            now: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            caller,
        }
    }
}

impl StoredRecord {
    /// A new record from a component's fields: audit fields it sent are dropped.
    pub fn new(fields: Map<String, Json>, stamp: &Stamp) -> StoredRecord {
        StoredRecord {
            uid: uuid::Uuid::now_v7().to_string(),
            created_at: stamp.now.clone(),
            last_updated_at: stamp.now.clone(),
            creator_uid: stamp.caller.clone(),
            last_updater_uid: stamp.caller.clone(),
            data: without_audit_fields(fields),
        }
    }

    /// The record as the component sees it: audit fields first, then the rest.
    pub fn to_json(&self) -> Json {
        let mut out = Map::new();
        out.insert("uid".into(), self.uid.clone().into());
        out.insert("created_at".into(), self.created_at.clone().into());
        out.insert("last_updated_at".into(), self.last_updated_at.clone().into());
        out.insert("creator_uid".into(), self.creator_uid.clone().into());
        out.insert("last_updater_uid".into(), self.last_updater_uid.clone().into());
        // Keys named like audit fields inside the data (written there by
        // raw SQL) never override the stamped values.
        out.extend(
            self.data
                .iter()
                .filter(|(k, _)| !AUDIT_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        Json::Object(out)
    }

    /// Applies `changes` and the stamp: top-level fields are replaced, a null
    /// removes the field, audit fields are ignored.
    pub fn apply(&mut self, changes: &Map<String, Json>, stamp: &Stamp) {
        for (k, v) in changes {
            if AUDIT_FIELDS.contains(&k.as_str()) {
                continue;
            }
            if v.is_null() {
                self.data.remove(k);
            } else {
                self.data.insert(k.clone(), v.clone());
            }
        }
        self.last_updated_at = stamp.now.clone();
        self.last_updater_uid = stamp.caller.clone();
    }
}

/// Audit fields belong to the host, and a null field is an absent one (as
/// in an update), so every backend filters `IS NULL` the same way.
fn without_audit_fields(mut fields: Map<String, Json>) -> Map<String, Json> {
    fields.retain(|k, v| !AUDIT_FIELDS.contains(&k.as_str()) && !v.is_null());
    fields
}

/// Parses a component's JSON object. A string holding the NUL character is
/// refused: PostgreSQL cannot process it, and every backend must agree.
pub(crate) fn parse_object(text: &str, what: &str) -> Result<Map<String, Json>, BackendError> {
    match serde_json::from_str(text) {
        Ok(Json::Object(map)) if map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) => Err(BackendError::Invalid(format!(
            "{what} holds a string with the NUL character (\\u0000), which cannot be stored"
        ))),
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(BackendError::Invalid(format!("{what} must be a JSON object"))),
        Err(e) => Err(BackendError::Invalid(format!("{what} is not valid JSON: {e}"))),
    }
}

fn has_nul(value: &Json) -> bool {
    match value {
        Json::String(s) => s.contains('\0'),
        Json::Array(items) => items.iter().any(has_nul),
        Json::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// A validated filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// A safe field name (letters, digits, `_`).
    pub field: String,
    /// How to compare.
    pub comparison: Comparison,
    /// A JSON scalar or null.
    pub value: Json,
}

impl Filter {
    /// Checks a filter from a component.
    pub fn parse(field: &str, comparison: Comparison, value: &str) -> Result<Filter, BackendError> {
        check_field(field)?;
        let value: Json = serde_json::from_str(value)
            .map_err(|e| BackendError::Invalid(format!("filter on \"{field}\": value is not valid JSON: {e}")))?;
        if value.is_array() || value.is_object() || has_nul(&value) {
            return Err(BackendError::Invalid(format!(
                "filter on \"{field}\": value must be a string (without NUL), number, boolean or null"
            )));
        }
        if (value.is_null() || value.is_boolean()) && !matches!(comparison, Comparison::Eq | Comparison::Ne) {
            return Err(BackendError::Invalid(format!(
                "filter on \"{field}\": null and booleans compare only with eq or ne"
            )));
        }
        Ok(Filter {
            field: field.to_owned(),
            comparison,
            value,
        })
    }

    /// Whether the field is an audit column rather than a data field.
    pub fn is_audit_field(&self) -> bool {
        AUDIT_FIELDS.contains(&self.field.as_str())
    }

    /// How the filter reads in SQL. A data field matches only values of the
    /// filter value's JSON type (1 is not `true`, "1" is not 1), except that
    /// `ne` matches every present value that is not equal, as JSON equality
    /// does; so every backend answers alike.
    pub fn condition(&self) -> Condition {
        match (&self.value, self.comparison) {
            (Json::Null, c) => Condition::Null {
                negated: c == Comparison::Ne,
            },
            (_, Comparison::Ne) => Condition::NotEqual,
            _ => Condition::Compare { operator: self.operator() },
        }
    }

    /// The JSON type of the filter value (never null: see [`Filter::condition`]).
    pub fn kind(&self) -> JsonKind {
        match self.value {
            Json::Bool(_) => JsonKind::Boolean,
            Json::Number(_) => JsonKind::Number,
            _ => JsonKind::String,
        }
    }

    /// The SQL operator.
    pub fn operator(&self) -> &'static str {
        match (self.comparison, self.value.is_null()) {
            (Comparison::Eq, true) => "IS",
            (Comparison::Ne, true) => "IS NOT",
            (Comparison::Eq, false) => "=",
            (Comparison::Ne, false) => "<>",
            (Comparison::Lt, _) => "<",
            (Comparison::Le, _) => "<=",
            (Comparison::Gt, _) => ">",
            (Comparison::Ge, _) => ">=",
        }
    }
}

/// A filter as SQL: see [`Filter::condition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The field is absent (`negated`: present).
    Null {
        /// `ne null`.
        negated: bool,
    },
    /// The field has the value's type and compares with it by `operator`.
    Compare {
        /// `=`, `<`, `<=`, `>`, `>=`.
        operator: &'static str,
    },
    /// The field is present and not equal to the value.
    NotEqual,
}

/// The JSON type of a filter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// A string.
    String,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
}

/// Field names end up inside SQL, so they are held to a strict alphabet.
pub(crate) fn check_field(field: &str) -> Result<(), BackendError> {
    let ok = !field.is_empty()
        && field.len() <= 64
        && !field.starts_with(|c: char| c.is_ascii_digit())
        && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(BackendError::Invalid(format!("\"{field}\" is not a valid field name")))
    }
}

/// Page sizes a component may ask for.
pub(crate) fn check_limit(limit: u32) -> Result<u32, BackendError> {
    if (1..=1000).contains(&limit) {
        Ok(limit)
    } else {
        Err(BackendError::Invalid(format!("limit must be 1 to 1000, not {limit}")))
    }
}

/// The uid a page cursor names. A page's cursor is its last record's uid,
/// which the OpenAPI document can describe exactly (a UUID); anything else
/// is refused.
pub(crate) fn decode_cursor(cursor: &str) -> Result<String, BackendError> {
    uuid::Uuid::parse_str(cursor)
        .map(|uid| uid.hyphenated().to_string())
        .map_err(|_| BackendError::Invalid("the page cursor is not valid".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Json) -> Map<String, Json> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn stamps_cannot_be_forged() {
        let stamp = Stamp::now(Some("alice".into()));
        let mut r = StoredRecord::new(
            obj(json!({"name": "Ada", "creator_uid": "mallory", "uid": "x", "nick": null})),
            &stamp,
        );
        assert_eq!(r.creator_uid.as_deref(), Some("alice"));
        assert_ne!(r.uid, "x");
        assert_eq!(r.data, obj(json!({"name": "Ada"})));
        let later = Stamp {
            now: "2030-01-01T00:00:00.000Z".into(),
            caller: Some("bob".into()),
        };
        r.apply(&obj(json!({"name": null, "age": 3, "creator_uid": "mallory"})), &later);
        assert_eq!(r.data, obj(json!({"age": 3})));
        assert_eq!(
            (r.creator_uid.as_deref(), r.last_updater_uid.as_deref()),
            (Some("alice"), Some("bob"))
        );
        assert_eq!(r.last_updated_at, "2030-01-01T00:00:00.000Z");
        assert_eq!(r.to_json()["creator_uid"], "alice");

        // Data written by raw SQL may hold keys named like audit fields.
        r.data.insert("creator_uid".into(), json!("mallory"));
        r.data.insert("uid".into(), json!("x"));
        let seen = r.to_json();
        assert_eq!((&seen["creator_uid"], &seen["uid"]), (&json!("alice"), &json!(r.uid)));
    }

    #[test]
    fn nul_characters_are_refused() {
        assert!(parse_object(r#"{"a": "x\u0000y"}"#, "the record").is_err());
        assert!(parse_object(r#"{"a": {"b": ["\u0000"]}}"#, "the record").is_err());
        assert!(parse_object(r#"{"a": "fine"}"#, "the record").is_ok());
        assert!(Filter::parse("a", Comparison::Eq, r#""\u0000""#).is_err());
    }

    #[test]
    fn filters_and_cursors_are_checked() {
        assert!(Filter::parse("name; DROP", Comparison::Eq, "1").is_err());
        assert!(Filter::parse("name", Comparison::Eq, "[1]").is_err());
        assert!(Filter::parse("name", Comparison::Lt, "null").is_err());
        assert!(Filter::parse("active", Comparison::Gt, "true").is_err());
        assert_eq!(Filter::parse("name", Comparison::Ne, "null").unwrap().operator(), "IS NOT");
        let uid = uuid::Uuid::now_v7().to_string();
        assert_eq!(decode_cursor(&uid).unwrap(), uid);
        assert_eq!(decode_cursor(&uid.to_uppercase()).unwrap(), uid);
        assert!(decode_cursor("not-a-cursor").is_err());
        assert!(decode_cursor("x' OR 1=1").is_err());
    }
}

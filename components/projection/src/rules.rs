//! The rule language of a projection: for each event type, how the event
//! turns the current record into the next one. Config `handlers` is a JSON
//! object from event type to rule; the type `"*"` is the rule for types
//! without their own. A rule is an object with any of:
//!
//! - `"set": ["name", ...]`: copy these fields from the event (fields the
//!   event lacks are left as they are);
//! - `"merge": true`: copy every field of the event but `type`, `eventId`
//!   and the aggregate key; a null removes the field;
//! - `"unset": ["field", ...]`: remove these fields;
//! - `"count": "field"`: add one to an integer field (missing counts as 0);
//!   `{type}` in the name is replaced by the event's type;
//! - `"remove": true`: the record is deleted (the other keys are ignored).
//!
//! They apply in that order. The aggregate key and `aggregateName` are set
//! last, so no rule can change them. An event whose type has no rule leaves
//! the record as it is.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// What one event type does to a record.
#[derive(Debug, Default, PartialEq)]
pub struct Rule {
    set: Vec<String>,
    merge: bool,
    unset: Vec<String>,
    count: Option<String>,
    remove: bool,
}

/// The rules of a projection, by event type.
#[derive(Debug, PartialEq)]
pub struct Rules(BTreeMap<String, Rule>);

fn names(value: &Value, what: &str) -> Result<Vec<String>, String> {
    value
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| format!("{what} must be a list of field names"))
}

impl Rules {
    /// Parses the `handlers` config; the error names what is wrong.
    pub fn parse(text: &str) -> Result<Rules, String> {
        let Ok(Value::Object(types)) = serde_json::from_str::<Value>(text) else {
            return Err("handlers must be a JSON object from event type to rule".into());
        };
        let mut rules = BTreeMap::new();
        for (event_type, spec) in types {
            let spec = spec
                .as_object()
                .ok_or_else(|| format!("the rule for \"{event_type}\" must be an object"))?;
            let mut rule = Rule::default();
            for (name, value) in spec {
                let what = format!("\"{name}\" in the rule for \"{event_type}\"");
                match name.as_str() {
                    "set" => rule.set = names(value, &what)?,
                    "unset" => rule.unset = names(value, &what)?,
                    "merge" => {
                        rule.merge = value
                            .as_bool()
                            .ok_or(format!("{what} must be true or false"))?
                    }
                    "remove" => {
                        rule.remove = value
                            .as_bool()
                            .ok_or(format!("{what} must be true or false"))?
                    }
                    "count" => {
                        rule.count = Some(
                            value
                                .as_str()
                                .ok_or(format!("{what} must be a field name"))?
                                .to_owned(),
                        )
                    }
                    _ => {
                        return Err(format!(
                            "unknown {what}; rules know set, merge, unset, count and remove"
                        ));
                    }
                }
            }
            rules.insert(event_type, rule);
        }
        Ok(Rules(rules))
    }

    /// The rule for `event_type`, if the projection handles it.
    pub fn get(&self, event_type: &str) -> Option<&Rule> {
        self.0.get(event_type).or_else(|| self.0.get("*"))
    }
}

/// Where a record belongs: its projection, aggregate key field and id.
pub struct Aggregate<'a> {
    pub projection: &'a str,
    pub key: &'a str,
    pub id: &'a str,
}

impl Rule {
    /// The record after `event` (of type `event_type`); none when removed.
    pub fn apply(
        &self,
        current: Option<Map<String, Value>>,
        event: &Map<String, Value>,
        event_type: &str,
        at: &Aggregate,
    ) -> Option<Map<String, Value>> {
        if self.remove {
            return None;
        }
        // A new aggregate starts as `{<key>: id}`, as in the seed.
        let mut record =
            current.unwrap_or_else(|| Map::from_iter([(at.key.to_owned(), Value::from(at.id))]));
        if self.merge {
            for (field, value) in event {
                if ["type", "eventId", at.key].contains(&field.as_str()) {
                    continue;
                }
                match value {
                    Value::Null => record.remove(field),
                    _ => record.insert(field.clone(), value.clone()),
                };
            }
        }
        for field in &self.set {
            if let Some(value) = event.get(field) {
                record.insert(field.clone(), value.clone());
            }
        }
        for field in &self.unset {
            record.remove(field);
        }
        if let Some(count) = &self.count {
            let field = count.replace("{type}", event_type);
            let n = record.get(&field).and_then(Value::as_i64).unwrap_or(0);
            record.insert(field, Value::from(n + 1));
        }
        record.insert(at.key.to_owned(), Value::from(at.id));
        record.insert("aggregateName".into(), Value::from(at.projection));
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    const AT: Aggregate = Aggregate {
        projection: "default",
        key: "customer",
        id: "c1",
    };

    #[test]
    fn rules_turn_records_into_the_next_ones() {
        let rules = Rules::parse(r#"{"create": {"set": ["name"]}, "update": {"merge": true}, "delete": {"remove": true}}"#).unwrap();
        let create = object(json!({"customer": "c1", "type": "create", "name": "Ada", "age": 3}));
        let record = rules
            .get("create")
            .unwrap()
            .apply(None, &create, "create", &AT);
        assert_eq!(
            record,
            Some(object(
                json!({"customer": "c1", "name": "Ada", "aggregateName": "default"})
            ))
        );
        let update = object(
            json!({"customer": "c9", "type": "update", "eventId": "e", "age": 4, "name": null}),
        );
        let record = rules
            .get("update")
            .unwrap()
            .apply(record, &update, "update", &AT);
        assert_eq!(
            record,
            Some(object(
                json!({"customer": "c1", "aggregateName": "default", "age": 4})
            ))
        );
        assert_eq!(
            rules
                .get("delete")
                .unwrap()
                .apply(record, &update, "delete", &AT),
            None
        );
        assert!(rules.get("unknown").is_none());
    }

    #[test]
    fn counts_and_wildcards() {
        let rules = Rules::parse(
            r#"{"*": {"count": "{type}"}, "reset": {"unset": ["create"], "count": "resets"}}"#,
        )
        .unwrap();
        let event = object(json!({"type": "create"}));
        let once = rules
            .get("create")
            .unwrap()
            .apply(None, &event, "create", &AT);
        let twice = rules
            .get("create")
            .unwrap()
            .apply(once, &event, "create", &AT);
        assert_eq!(twice.as_ref().unwrap()["create"], 2);
        let reset = rules
            .get("reset")
            .unwrap()
            .apply(twice, &event, "reset", &AT)
            .unwrap();
        assert_eq!(
            Value::Object(reset),
            json!({"customer": "c1", "aggregateName": "default", "resets": 1})
        );
    }

    #[test]
    fn bad_rules_are_named() {
        assert!(Rules::parse("[]").is_err());
        assert!(
            Rules::parse(r#"{"create": {"sett": ["name"]}}"#)
                .unwrap_err()
                .contains("\"sett\"")
        );
        assert!(
            Rules::parse(r#"{"create": {"set": "name"}}"#)
                .unwrap_err()
                .contains("list of field names")
        );
    }
}

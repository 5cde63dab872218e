//! The three kinds of item a user has in Alma: where they live, which
//! fields an answer keeps, and how long a cached one stays valid.

use serde_json::{Map, Value};

/// How long a cached request or fee stays valid, in seconds.
pub const TWO_WEEKS: i64 = 14 * 24 * 3600;

/// A loan, a request or a fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Loan,
    Request,
    Fee,
}

const LOAN_FIELDS: &[&str] = &[
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

const REQUEST_FIELDS: &[&str] = &[
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

const FEE_FIELDS: &[&str] = &[
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

impl Kind {
    /// Every kind, in the order a user's answer lists them.
    pub const ALL: [Kind; 3] = [Kind::Loan, Kind::Request, Kind::Fee];

    /// The path segment, in these routes and in Alma's.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Loan => "loans",
            Kind::Request => "requests",
            Kind::Fee => "fees",
        }
    }

    /// The array of Alma's list answer.
    pub fn list_key(self) -> &'static str {
        match self {
            Kind::Loan => "item_loan",
            Kind::Request => "user_request",
            Kind::Fee => "fee",
        }
    }

    /// The field holding an item's id.
    pub fn id_field(self) -> &'static str {
        match self {
            Kind::Loan => "loan_id",
            Kind::Request => "request_id",
            Kind::Fee => "id",
        }
    }

    /// The id list of this kind in a cached user.
    pub fn ids_field(self) -> &'static str {
        match self {
            Kind::Loan => "loan_ids",
            Kind::Request => "request_ids",
            Kind::Fee => "fee_ids",
        }
    }

    /// The id of `item`, whether Alma wrote it as a string or a number.
    pub fn id_of(self, item: &Map<String, Value>) -> Option<String> {
        match item.get(self.id_field())? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// Whether a cached item is still valid at `now` (unix seconds): a loan
    /// until its due date; a request or fee for two weeks. The cache's
    /// writers store those with a two-week time to live, so the store no
    /// longer returns older ones; an entry that records `cached_at` (unix
    /// seconds) is also held to two weeks from then. (A request's own
    /// `expiry_date` is Alma's, not the cache's.)
    pub fn valid(self, item: &Map<String, Value>, now: i64) -> bool {
        match self {
            Kind::Loan => item
                .get("due_date")
                .and_then(timestamp)
                .is_some_and(|due| due >= now),
            Kind::Request | Kind::Fee => match item.get("cached_at") {
                None => true,
                Some(at) => unix_seconds(at).is_some_and(|at| at + TWO_WEEKS >= now),
            },
        }
    }

    /// `item` with only the fields this kind answers, in their listed order.
    pub fn keep(self, mut item: Map<String, Value>) -> Value {
        let fields = match self {
            Kind::Loan => LOAN_FIELDS,
            Kind::Request => REQUEST_FIELDS,
            Kind::Fee => FEE_FIELDS,
        };
        let kept: Map<String, Value> = fields
            .iter()
            .filter_map(|f| {
                item.remove(*f)
                    .filter(|v| !v.is_null())
                    .map(|v| ((*f).to_owned(), v))
            })
            .collect();
        Value::Object(kept)
    }
}

/// Unix seconds written as a number or as a string of digits.
pub fn unix_seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An RFC 3339 date-time (as Alma writes them), or unix seconds.
pub fn timestamp(v: &Value) -> Option<i64> {
    if let Value::String(s) = v
        && let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim())
    {
        return Some(t.timestamp());
    }
    unix_seconds(v)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn keeps_only_listed_fields_in_order_and_omits_absent_ones() {
        let loan = object(
            json!({"user_id": "u1", "title": "T", "loan_id": "7", "due_date": null, "library": {"value": "MAIN"}}),
        );
        assert_eq!(
            serde_json::to_string(&Kind::Loan.keep(loan)).unwrap(),
            r#"{"loan_id":"7","title":"T"}"#
        );
    }

    #[test]
    fn loans_last_until_due_and_others_until_expiry() {
        let now = 1_700_000_000;
        assert!(Kind::Loan.valid(&object(json!({"due_date": "2030-01-01T00:00:00Z"})), now));
        assert!(!Kind::Loan.valid(
            &object(json!({"due_date": "2020-01-01T00:00:00.000Z"})),
            now
        ));
        assert!(!Kind::Loan.valid(&object(json!({})), now));
        assert!(Kind::Fee.valid(&object(json!({})), now));
        assert!(Kind::Fee.valid(&object(json!({"cached_at": now - TWO_WEEKS})), now));
        assert!(Kind::Request.valid(
            &object(json!({"cached_at": now.to_string(), "expiry_date": "2020-01-01Z"})),
            now
        ));
        assert!(!Kind::Fee.valid(&object(json!({"cached_at": now - TWO_WEEKS - 1})), now));
    }
}

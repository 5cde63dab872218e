//! The Alma API: `GET {base}/users/{user}/{loans|requests|fees}[/{id}]`
//! with `Authorization: apikey <key>` and `format=json`. Lists are read
//! page by page (`limit`, `offset`, `total_record_count`); every call of one
//! request shares one time budget, so a slow Alma costs a 504, never a hang.

use std::cell::OnceCell;
use std::time::Instant;

use corral_sdk::ApiError;
use corral_sdk::http::{self, Get, HttpError, Reply};
use serde_json::{Map, Value};

use crate::kind::Kind;
use crate::settings::{self, Settings};

/// Alma error codes that mean "no such user".
const NOT_FOUND_CODES: &[&str] = &["401861", "401890", "401823"];

/// A record as Alma answers it.
pub type Item = Map<String, Value>;

/// The Alma calls of one request.
pub struct Alma<'a> {
    settings: &'a Settings,
    key: OnceCell<String>,
    deadline: Instant,
}

impl<'a> Alma<'a> {
    /// Calls whose budget starts now.
    pub fn new(settings: &'a Settings) -> Alma<'a> {
        Alma {
            settings,
            key: OnceCell::new(),
            deadline: Instant::now()
                + std::time::Duration::from_millis(settings.upstream_budget_ms),
        }
    }

    /// Every item of each kind's list for `user`; `None` when Alma does not
    /// know the user. First pages go out together, then all further pages.
    pub fn lists(&self, user: &str, kinds: &[Kind]) -> Result<Option<Vec<Vec<Item>>>, ApiError> {
        let size = self.settings.page_size;
        let first: Vec<Get> = kinds
            .iter()
            .map(|k| self.list_page(user, *k, 0))
            .collect::<Result<_, _>>()?;
        let mut lists = Vec::new();
        let mut more = Vec::new();
        for (kind, reply) in kinds
            .iter()
            .zip(http::get_all(first, self.settings.concurrency))
        {
            let Some(page) = answer(reply, "the user")? else {
                return Ok(None);
            };
            let total = page
                .get("total_record_count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let mut offset = u64::from(size);
            while offset < total {
                more.push((lists.len(), *kind, offset));
                offset += u64::from(size);
            }
            lists.push(items_of(&page, *kind));
        }
        let gets: Vec<Get> = more
            .iter()
            .map(|(_, k, o)| self.list_page(user, *k, *o))
            .collect::<Result<_, _>>()?;
        for ((list, _, _), reply) in more
            .iter()
            .zip(http::get_all(gets, self.settings.concurrency))
        {
            let page = answer(reply, "the user")?.ok_or_else(|| gone(user))?;
            lists[*list].extend(items_of(&page, kinds[*list]));
        }
        Ok(Some(lists))
    }

    /// The items with these ids, fetched concurrently; `None` for an id Alma
    /// does not know (any more).
    pub fn items(
        &self,
        user: &str,
        wanted: &[(Kind, String)],
    ) -> Result<Vec<Option<Item>>, ApiError> {
        let gets: Vec<Get> = wanted
            .iter()
            .map(|(kind, id)| {
                self.get(
                    &format!(
                        "/users/{}/{}/{}",
                        http::encode(user),
                        kind.segment(),
                        http::encode(id)
                    ),
                    "",
                )
            })
            .collect::<Result<_, _>>()?;
        http::get_all(gets, self.settings.concurrency)
            .into_iter()
            .map(|reply| Ok(answer(reply, "the item")?.and_then(|v| v.as_object().cloned())))
            .collect()
    }

    fn list_page(&self, user: &str, kind: Kind, offset: u64) -> Result<Get, ApiError> {
        let query = format!("limit={}&offset={offset}&", self.settings.page_size);
        self.get(
            &format!("/users/{}/{}", http::encode(user), kind.segment()),
            &query,
        )
    }

    /// A GET of `path` under the base URL with the key, `format=json`, and
    /// what is left of the budget; 504 when nothing is left.
    fn get(&self, path: &str, query: &str) -> Result<Get, ApiError> {
        let left = self
            .deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as u64;
        if left == 0 {
            return Err(HttpError::Timeout("Alma did not answer in time".into()).into());
        }
        // Read once per request, when Alma is first needed (an SSM secret on AWS).
        let key = match self.key.get() {
            Some(key) => key,
            None => {
                let key = settings::api_key()?;
                self.key.get_or_init(|| key)
            }
        };
        Ok(http::get(format!(
            "{}{path}?{query}format=json",
            self.settings.base_url
        ))
        .header("authorization", &format!("apikey {key}"))
        .header("accept", "application/json")
        .timeout_ms(left))
    }
}

/// The JSON of a 2xx answer; `None` when Alma says the thing does not
/// exist (404, or a 400 naming a not-found error); 502 for anything else.
fn answer(reply: Result<Reply, HttpError>, what: &str) -> Result<Option<Value>, ApiError> {
    let reply = reply?;
    if reply.ok() {
        return Ok(Some(reply.json()?));
    }
    let errors: Vec<(String, String)> = reply
        .json::<Value>()
        .ok()
        .and_then(|v| v.pointer("/errorList/error").cloned())
        .map(|e| {
            if let Value::Array(list) = e {
                list
            } else {
                vec![e]
            }
        })
        .unwrap_or_default()
        .iter()
        .map(|e| (text(&e["errorCode"]), text(&e["errorMessage"])))
        .collect();
    let not_found = errors.iter().any(|(code, message)| {
        let message = message.to_ascii_lowercase();
        NOT_FOUND_CODES.contains(&code.as_str())
            || message.contains("not found")
            || message.contains("does not exist")
    });
    if reply.status == 404 || (reply.status == 400 && not_found) {
        return Ok(None);
    }
    let detail = errors
        .first()
        .map(|(code, message)| format!(": {code} {message}"))
        .unwrap_or_default();
    Err(HttpError::Failed(format!("Alma answered {} for {what}{detail}", reply.status)).into())
}

/// The items of one list page (Alma omits the array when it is empty).
fn items_of(page: &Value, kind: Kind) -> Vec<Item> {
    match page.get(kind.list_key()) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_object().cloned())
            .collect(),
        Some(Value::Object(item)) => vec![item.clone()],
        _ => Vec::new(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn gone(user: &str) -> ApiError {
    HttpError::Failed(format!(
        "Alma stopped knowing the user '{user}' between two pages"
    ))
    .into()
}

//! Example data, so that a fresh `corral serve` has something to show. It
//! is loaded when the component's config sets `example_data = "true"` and
//! the database has no colleges yet (every major, advisor and student hangs
//! off a college).

use corral_sdk::bindings::corral::host::config;
use corral_sdk::prelude::*;

use crate::rows;

/// (name, email_tld, majors)
const COLLEGES: &[(&str, &str, &[&str])] = &[
    (
        "College of Engineering",
        "eng.example.edu",
        &["Computer Science", "Mechanical Engineering"],
    ),
    (
        "College of Arts and Sciences",
        "cas.example.edu",
        &["Mathematics", "History"],
    ),
];

/// (name, email, is_undergraduate, major)
const ADVISORS: &[(&str, &str, bool, &str)] = &[
    (
        "Morgan Reyes",
        "mreyes@eng.example.edu",
        true,
        "Computer Science",
    ),
    (
        "Sam Okafor",
        "sokafor@eng.example.edu",
        false,
        "Computer Science",
    ),
    (
        "Priya Natarajan",
        "pnatarajan@cas.example.edu",
        true,
        "Mathematics",
    ),
];

/// (question, answer)
const FAQS: &[(&str, &str)] = &[
    (
        "How do I join the waiting room?",
        "Sign in with your student email and choose Join queue; you are placed at the end of the queue for your major.",
    ),
    (
        "Can I wait in two queues at once?",
        "No. A student waits in one queue at a time; changing your major or level takes you out of it.",
    ),
    (
        "How long does a session take?",
        "Most advising sessions take about fifteen minutes.",
    ),
];

/// (name, student_identifier, email, is_undergraduate, major)
const STUDENTS: &[(&str, &str, &str, bool, &str)] = &[
    (
        "Alex Kim",
        "S0001",
        "akim@eng.example.edu",
        true,
        "Computer Science",
    ),
    (
        "Jordan Lee",
        "S0002",
        "jlee@cas.example.edu",
        true,
        "Mathematics",
    ),
    (
        "Taylor Brooks",
        "S0003",
        "tbrooks@eng.example.edu",
        false,
        "Computer Science",
    ),
];

/// Whether the manifest asks for example data.
pub fn wanted() -> Result<bool, String> {
    let value =
        config::get("example_data").map_err(|e| format!("reading config example_data: {e:?}"))?;
    Ok(value.as_deref().map(str::trim) == Some("true"))
}

/// Loads the example data into an empty database, in one transaction.
pub fn load() -> Result<(), ApiError> {
    let tx = sql::Tx::begin()?;
    if !tx
        .query("SELECT id FROM advising_colleges LIMIT 1", &[])?
        .is_empty()
    {
        return Ok(());
    }
    let mut majors = Vec::new();
    for (college, tld, names) in COLLEGES {
        let college_id = new_id(
            &tx,
            "INSERT INTO advising_colleges (name, email_tld) VALUES (?, ?) RETURNING id",
            &[(*college).into(), (*tld).into()],
        )?;
        for name in *names {
            let id = new_id(
                &tx,
                "INSERT INTO advising_majors (name, college_id) VALUES (?, ?) RETURNING id",
                &[(*name).into(), college_id.into()],
            )?;
            majors.push((*name, id));
        }
    }
    let major = |name: &str| majors.iter().find(|(n, _)| *n == name).map(|(_, id)| *id);
    for (name, email, undergraduate, major_name) in ADVISORS {
        tx.execute(
            "INSERT INTO advising_advisors (name, email, is_undergraduate, major_id) VALUES (?, ?, ?, ?)",
            &[(*name).into(), (*email).into(), (*undergraduate).into(), major(major_name).into()],
        )?;
    }
    for (question, answer) in FAQS {
        tx.execute(
            "INSERT INTO advising_faqs (question, answer) VALUES (?, ?)",
            &[(*question).into(), (*answer).into()],
        )?;
    }
    for (name, identifier, email, undergraduate, major_name) in STUDENTS {
        tx.execute(
            "INSERT INTO advising_students (name, student_identifier, email, is_undergraduate, major_id) VALUES (?, ?, ?, ?, ?)",
            &[(*name).into(), (*identifier).into(), (*email).into(), (*undergraduate).into(), major(major_name).into()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn new_id(tx: &sql::Tx, statement: &str, params: &[sql::Value]) -> Result<i64, ApiError> {
    let created = tx.query(statement, params)?;
    created
        .first()
        .and_then(|row| rows::integer(row, "id"))
        .ok_or_else(|| ApiError::internal("the insert returned no id"))
}

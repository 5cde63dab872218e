//! SmartAdvising (seed 001): an advising waiting room. Students join the
//! queue of their major and level (undergraduate or graduate); advisors,
//! colleges, majors and FAQs are the catalog around it. The HTTP contract is
//! the original API's, with its flaws fixed: 404 for what does not exist
//! (a major named in a body too), 409 for a taken email and for a student
//! already in a queue (the original answered 400 for both of those; a valid
//! request refused because of stored state is a conflict, not a bad request),
//! and queue positions that stay 1..n under concurrent requests (see `queues`).

mod access;
mod catalog;
mod example;
mod faqs;
mod input;
mod locks;
mod queues;
mod rows;
mod schema;
mod students;

use corral_sdk::prelude::*;

struct Advising;

impl Service for Advising {
    fn init() -> Result<(), String> {
        schema::create().map_err(|e| format!("creating the tables: {e}"))?;
        if example::wanted()? {
            match example::load() {
                // Another host loaded it at the same moment (a unique email_tld).
                Err(e) if e.status == 409 => {}
                other => other.map_err(|e| format!("loading the example data: {e}"))?,
            }
        }
        Ok(())
    }

    fn routes() -> Router {
        Router::new()
            .get("/advisors", catalog::advisors)
            .get("/advisors/{advisor_id}", catalog::advisor)
            .get("/colleges", catalog::colleges)
            .get("/colleges/{college_id}", catalog::college)
            .get("/colleges/{college_id}/majors", catalog::majors)
            .get("/colleges/{college_id}/majors/{major_id}", catalog::major)
            .get("/faqs", faqs::list)
            .post("/faqs", faqs::create)
            .get("/faqs/{faq_id}", faqs::one)
            .patch("/faqs/{faq_id}", faqs::update)
            .delete("/faqs/{faq_id}", faqs::delete)
            .get("/students", students::list)
            .post("/students", students::create)
            .get("/students/{student_id}", students::one)
            .patch("/students/{student_id}", students::update)
            .delete("/students/{student_id}", students::delete)
            .get("/queues", queues::list)
            .post("/queuers", queues::enqueue)
            .delete("/queuers/{queuer_id}", queues::dequeue)
    }
}

corral_sdk::service!(Advising);

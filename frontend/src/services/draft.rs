//! The composer's text survives the end of a session: while someone types, the text is kept
//! in memory; when the session ends (expired or revoked), it is put in `sessionStorage`
//! (this tab only) under the person's name, and the first composer shown after the same
//! person signs in again — after the identity provider's pages too — gets it back. Nobody
//! else's composer ever does.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

const KEY: &str = "confab.interrupted-draft";

thread_local! {
    static CURRENT: RefCell<String> = const { RefCell::new(String::new()) };
}

#[derive(Serialize, Deserialize)]
struct Saved {
    person: String,
    text: String,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

/// What the composer holds now.
pub fn typed(text: &str) {
    CURRENT.with(|c| text.clone_into(&mut c.borrow_mut()));
}

/// The session of `person` ended: keep what they were typing for their return.
pub fn interrupt(person: &str) {
    let text = CURRENT.with(|c| std::mem::take(&mut *c.borrow_mut()));
    if text.trim().is_empty() {
        return;
    }
    let saved = Saved {
        person: person.to_owned(),
        text,
    };
    if let (Some(s), Ok(raw)) = (storage(), crate::json::encode(&saved)) {
        let _ = s.set_item(KEY, &raw);
    }
}

/// The text `person` was typing when their session ended, once.
pub fn take(person: &str) -> Option<String> {
    let s = storage()?;
    let raw = s.get_item(KEY).ok()??;
    let saved: Saved = crate::json::decode(&raw).ok()?;
    if saved.person != person {
        return None;
    }
    let _ = s.remove_item(KEY);
    Some(saved.text)
}

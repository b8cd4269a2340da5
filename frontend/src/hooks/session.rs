//! The session: server settings, who is signed in and the API client that signs requests.
//! Kept in a context provider (set up by [`crate::app::App`]), never in a global.

use std::rc::Rc;

use confab_api_types::ClientConfig;
use yew::prelude::*;

use crate::services::api::{Api, Credentials};

/// The signed-in person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIn {
    /// What the sidebar shows (dev username, or Clerk email).
    pub name: String,
    pub credentials: Credentials,
}

/// The value of the session context.
#[derive(Clone, PartialEq)]
pub struct Session {
    /// `GET /api/config`.
    pub config: Rc<ClientConfig>,
    /// `None` while signed out.
    pub user: Option<Rc<SignedIn>>,
    /// Signs requests with the current credentials; a 401 ends the session.
    pub api: Api,
    /// Starts a session (after dev sign-in or Clerk's).
    pub sign_in: Callback<SignedIn>,
    /// Ends the session.
    pub sign_out: Callback<()>,
    /// Why the last session ended, shown on the sign-in page.
    pub notice: Option<String>,
}

/// The session context; only used below [`crate::app::App`], which always provides it.
#[hook]
pub fn use_session() -> Session {
    #[expect(
        clippy::expect_used,
        reason = "App provides the context above every page"
    )]
    use_context::<Session>().expect("the session context is provided by App")
}

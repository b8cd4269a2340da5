//! A counter that pages bump after changing data the sidebar lists (projects, chats), so the
//! sidebar reloads.

use yew::prelude::*;

/// The value of the data-version context.
#[derive(Clone, PartialEq)]
pub struct DataVersion {
    /// Changes whenever lists should be reloaded.
    pub version: u32,
    /// Asks every list to reload.
    pub bump: Callback<()>,
}

/// The data-version context (a no-op outside the signed-in layout).
#[hook]
pub fn use_data_version() -> DataVersion {
    use_context::<DataVersion>().unwrap_or_else(|| DataVersion {
        version: 0,
        bump: Callback::noop(),
    })
}

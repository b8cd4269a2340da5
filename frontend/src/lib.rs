#![doc = include_str!("../README.md")]

pub mod app;
pub mod components;
pub mod hooks;
pub mod json;
pub mod markdown;
pub mod services;
pub mod state;
pub mod wording;

/// Entry point of the wasm module: runs once when the page loads it.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let root = document
        .get_element_by_id("app")
        .or_else(|| document.body().map(Into::into));
    if let Some(root) = root {
        // Drop the "Loading…" placeholder that index.html shows until the client runs.
        root.set_inner_html("");
        yew::Renderer::<app::App>::with_root(root).render();
    }
}

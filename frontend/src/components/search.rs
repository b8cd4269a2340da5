//! The sidebar's search: a field named "Search" (Ctrl+K or ⌘K focuses it) and, while it
//! holds words, a list named "Search results" of links to the messages found, each showing
//! the conversation's title, the snippet (only its `<mark>` is markup) and the date.

use confab_api_types::{Page, SearchResult};
use wasm_bindgen::{JsCast, closure::Closure};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::{
    app::Route,
    components::nav_link::NavLink,
    hooks::use_session,
    services::{api::encode_query, browser},
};

/// How long typing must pause before the query is sent (ms).
const DEBOUNCE_MS: i32 = 200;
/// How many results are shown.
const RESULTS: u32 = 20;

/// The pieces of a server snippet: text, and whether it is inside `<mark>`. Everything but
/// `<mark>` and `</mark>` is text: the five entities the server writes are decoded and the
/// pieces are rendered as text nodes, so no other markup can appear.
pub fn snippet_parts(snippet: &str) -> Vec<(bool, String)> {
    let mut parts = Vec::new();
    let mut marked = false;
    let mut rest = snippet;
    loop {
        let tag = if marked { "</mark>" } else { "<mark>" };
        match rest.find(tag) {
            Some(i) => {
                if i > 0 {
                    parts.push((marked, unescape(&rest[..i])));
                }
                rest = &rest[i + tag.len()..];
                marked = !marked;
            }
            None => {
                if !rest.is_empty() {
                    parts.push((marked, unescape(rest)));
                }
                return parts;
            }
        }
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Where a result leads: its message, or the conversation for a title.
fn result_route(r: &SearchResult) -> Route {
    match r.message_id {
        Some(message) => Route::Message {
            project: r.project_id,
            conversation: r.conversation_id,
            message,
        },
        None => Route::Chat {
            project: r.project_id,
            conversation: r.conversation_id,
        },
    }
}

#[component]
pub fn Search() -> Html {
    let session = use_session();
    let input = use_node_ref();
    let query = use_state(String::new);
    let results = use_state(|| None::<Result<Vec<SearchResult>, String>>);
    // Bumped by every keystroke: an answer to an older query is dropped.
    let generation = use_mut_ref(|| 0u64);

    {
        // Ctrl+K / ⌘K focuses the field, from anywhere on the page.
        let input = input.clone();
        use_effect_with((), move |_| {
            let listener = Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(
                move |e: web_sys::KeyboardEvent| {
                    if (e.ctrl_key() || e.meta_key()) && e.key().eq_ignore_ascii_case("k") {
                        e.prevent_default();
                        if let Some(field) = input.cast::<HtmlInputElement>() {
                            let _ = field.focus();
                            field.select();
                        }
                    }
                },
            );
            let window = browser::window();
            if let Some(w) = &window {
                let _ = w
                    .add_event_listener_with_callback("keydown", listener.as_ref().unchecked_ref());
            }
            move || {
                if let Some(w) = &window {
                    let _ = w.remove_event_listener_with_callback(
                        "keydown",
                        listener.as_ref().unchecked_ref(),
                    );
                }
                drop(listener);
            }
        });
    }

    let oninput = {
        let (query, results, generation, api) = (
            query.clone(),
            results.clone(),
            generation.clone(),
            session.api.clone(),
        );
        Callback::from(move |e: InputEvent| {
            let Some(field) = e.target_dyn_into::<HtmlInputElement>() else {
                return;
            };
            let text = field.value();
            query.set(text.clone());
            let mine = {
                let mut g = generation.borrow_mut();
                *g += 1;
                *g
            };
            if text.trim().is_empty() {
                results.set(None);
                return;
            }
            let (results, generation, api) = (results.clone(), generation.clone(), api.clone());
            spawn_local(async move {
                browser::sleep(DEBOUNCE_MS).await;
                if *generation.borrow() != mine {
                    return;
                }
                let path = format!("/api/search?q={}&limit={RESULTS}", encode_query(&text));
                let answer = api.get::<Page<SearchResult>>(&path).await;
                if *generation.borrow() == mine {
                    results.set(Some(answer.map(|p| p.items).map_err(|e| e.describe())));
                }
            });
        })
    };
    let onkeydown = {
        let (query, results, generation) = (query.clone(), results.clone(), generation.clone());
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                *generation.borrow_mut() += 1;
                query.set(String::new());
                results.set(None);
            }
        })
    };
    let clear = {
        let (query, results, generation) = (query.clone(), results.clone(), generation.clone());
        Callback::from(move |_: MouseEvent| {
            *generation.borrow_mut() += 1;
            query.set(String::new());
            results.set(None);
        })
    };

    let list = match &*results {
        None => html! {},
        Some(Err(e)) => html! { <p class="error small pad" role="alert">{ e }</p> },
        Some(Ok(items)) if items.is_empty() => html! {
            <p class="muted small pad" role="status">{ "Nothing found." }</p>
        },
        Some(Ok(items)) => html! {
            <ul class="search-results" role="list" aria-label="Search results">
                { for items.iter().map(|r| {
                    let title = r.conversation_title.as_deref().map(str::trim)
                        .filter(|t| !t.is_empty()).unwrap_or("New chat").to_owned();
                    html! {
                        <li key={format!("{}{:?}", r.conversation_id, r.message_id)}>
                            <NavLink to={result_route(r)} class="search-result">
                                <span class="search-title truncate">{ title }</span>
                                <span class="search-snippet">
                                    { for snippet_parts(&r.snippet).into_iter().map(|(marked, text)| {
                                        if marked { html! { <mark>{ text }</mark> } } else { html! { { text } } }
                                    }) }
                                </span>
                                <time class="search-date muted small">
                                    { browser::local_time(&r.created_at) }
                                </time>
                            </NavLink>
                        </li>
                    }
                }) }
            </ul>
        },
    };

    html! {
        <div class="sidebar-search" role="search">
            <input ref={input} type="search" class="search-input" aria-label="Search"
                placeholder="Search (Ctrl+K)" autocomplete="off" value={(*query).clone()}
                {oninput} {onkeydown} />
            if !query.is_empty() {
                <button type="button" class="button ghost small" onclick={clear}>{ "Clear search" }</button>
            }
            { list }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_marks_become_markup() {
        assert_eq!(
            snippet_parts("&lt;b&gt;a &amp; <mark>caf&#39;é</mark> &quot;z&quot;"),
            [
                (false, "<b>a & ".to_owned()),
                (true, "caf'é".to_owned()),
                (false, " \"z\"".to_owned()),
            ]
        );
        // An escaped mark stays text; an unclosed mark runs to the end.
        assert_eq!(
            snippet_parts("&lt;mark&gt;x<mark>y"),
            [(false, "<mark>x".to_owned()), (true, "y".to_owned())]
        );
        assert_eq!(snippet_parts("&amp;lt;"), [(false, "&lt;".to_owned())]);
    }
}

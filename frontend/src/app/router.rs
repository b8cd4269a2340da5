//! The client's routes and a small router over the History API (`pushState` and `popstate`).

use uuid::Uuid;
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use yew::prelude::*;

/// The client's own routes; the server answers each with index.html.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/`
    Home,
    /// `/p/{project}`
    Project { project: Uuid },
    /// `/p/{project}/settings`
    Settings { project: Uuid },
    /// `/p/{project}/c/{conversation}`
    Chat { project: Uuid, conversation: Uuid },
    /// `/p/{project}/c/{conversation}/m/{message}`: the chat scrolled to one message,
    /// highlighted (a search result).
    Message {
        project: Uuid,
        conversation: Uuid,
        message: Uuid,
    },
    /// `/usage`: the signed-in user's tokens.
    Usage,
    /// `/admin`: users, their usage and quotas (administrators).
    Admin,
    /// Anything else.
    NotFound,
}

impl Route {
    /// The route of a URL path (query and fragment already removed).
    pub fn parse(path: &str) -> Self {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let id = |s: &str| Uuid::parse_str(s).ok();
        match segments.as_slice() {
            [] => Self::Home,
            ["usage"] => Self::Usage,
            ["admin"] => Self::Admin,
            ["p", p] => id(p).map_or(Self::NotFound, |project| Self::Project { project }),
            ["p", p, "settings"] => {
                id(p).map_or(Self::NotFound, |project| Self::Settings { project })
            }
            ["p", p, "c", c] => match (id(p), id(c)) {
                (Some(project), Some(conversation)) => Self::Chat {
                    project,
                    conversation,
                },
                _ => Self::NotFound,
            },
            ["p", p, "c", c, "m", m] => match (id(p), id(c), id(m)) {
                (Some(project), Some(conversation), Some(message)) => Self::Message {
                    project,
                    conversation,
                    message,
                },
                _ => Self::NotFound,
            },
            _ => Self::NotFound,
        }
    }

    /// The URL path of the route.
    pub fn to_path(&self) -> String {
        match self {
            Self::Home | Self::NotFound => "/".to_owned(),
            Self::Usage => "/usage".to_owned(),
            Self::Admin => "/admin".to_owned(),
            Self::Project { project } => format!("/p/{project}"),
            Self::Settings { project } => format!("/p/{project}/settings"),
            Self::Chat {
                project,
                conversation,
            } => format!("/p/{project}/c/{conversation}"),
            Self::Message {
                project,
                conversation,
                message,
            } => format!("/p/{project}/c/{conversation}/m/{message}"),
        }
    }

    /// The project and conversation a route is about.
    pub fn selection(&self) -> (Option<Uuid>, Option<Uuid>) {
        match self {
            Self::Project { project } | Self::Settings { project } => (Some(*project), None),
            Self::Chat {
                project,
                conversation,
            }
            | Self::Message {
                project,
                conversation,
                ..
            } => (Some(*project), Some(*conversation)),
            Self::Home | Self::NotFound | Self::Usage | Self::Admin => (None, None),
        }
    }
}

/// How a move to another route treats the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// A new history entry (`pushState`).
    Add,
    /// In place of the current one (`replaceState`).
    Replace,
}

/// Moves to another route.
#[derive(Clone, PartialEq)]
pub struct Navigator {
    go: Callback<(Route, Entry)>,
}

impl Navigator {
    /// Goes to `route`, adding a history entry.
    pub fn push(&self, route: &Route) {
        self.go.emit((route.clone(), Entry::Add));
    }

    /// Goes to `route` in place of the current history entry.
    pub fn replace(&self, route: &Route) {
        self.go.emit((route.clone(), Entry::Replace));
    }
}

#[derive(Clone, PartialEq)]
struct RouterContext {
    route: Route,
    navigator: Navigator,
}

/// The current route (`Home` outside a [`Router`]).
#[hook]
pub fn use_route() -> Route {
    use_context::<RouterContext>().map_or(Route::Home, |c| c.route)
}

/// The navigator (`None` outside a [`Router`]).
#[hook]
pub fn use_navigator() -> Option<Navigator> {
    use_context::<RouterContext>().map(|c| c.navigator)
}

fn current_route() -> Route {
    web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .map_or(Route::Home, |p| Route::parse(&p))
}

#[derive(Properties, PartialEq)]
pub struct RouterProps {
    pub children: Html,
}

/// Provides the route taken from the address bar, kept in step with back and forward.
#[component]
pub fn Router(props: &RouterProps) -> Html {
    let route = use_state(current_route);
    {
        let route = route.clone();
        use_effect_with((), move |_| {
            let listener = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
                route.set(current_route());
            });
            let window = web_sys::window();
            if let Some(w) = &window {
                let _ = w.add_event_listener_with_callback(
                    "popstate",
                    listener.as_ref().unchecked_ref(),
                );
            }
            move || {
                if let Some(w) = &window {
                    let _ = w.remove_event_listener_with_callback(
                        "popstate",
                        listener.as_ref().unchecked_ref(),
                    );
                }
                drop(listener);
            }
        });
    }
    let navigator = Navigator {
        go: {
            let route = route.clone();
            Callback::from(move |(next, entry): (Route, Entry)| {
                if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
                    let path = next.to_path();
                    let _ = match entry {
                        Entry::Add => history.push_state_with_url(&JsValue::NULL, "", Some(&path)),
                        Entry::Replace => {
                            history.replace_state_with_url(&JsValue::NULL, "", Some(&path))
                        }
                    };
                }
                route.set(next);
            })
        },
    };
    html! {
        <ContextProvider<RouterContext> context={RouterContext { route: (*route).clone(), navigator }}>
            { props.children.clone() }
        </ContextProvider<RouterContext>>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_survives_a_round_trip_through_its_path() {
        let p = Uuid::from_u128(0x0190_f0f0_0000_7000_8000_0000_0000_0001);
        let c = Uuid::from_u128(0x0190_f0f0_0000_7000_8000_0000_0000_0002);
        for route in [
            Route::Home,
            Route::Usage,
            Route::Admin,
            Route::Project { project: p },
            Route::Settings { project: p },
            Route::Chat {
                project: p,
                conversation: c,
            },
            Route::Message {
                project: p,
                conversation: c,
                message: p,
            },
        ] {
            assert_eq!(Route::parse(&route.to_path()), route);
        }
    }

    #[test]
    fn unknown_paths_and_malformed_ids_are_not_found() {
        assert_eq!(Route::parse("/p/not-a-uuid"), Route::NotFound);
        assert_eq!(
            Route::parse("/p/0190f0f0-0000-7000-8000-000000000001/c/x"),
            Route::NotFound
        );
        assert_eq!(Route::parse("/elsewhere"), Route::NotFound);
        assert_eq!(Route::parse(""), Route::Home);
        assert_eq!(
            Route::parse("/p/0190f0f0-0000-7000-8000-000000000001/"),
            Route::Project {
                project: Uuid::from_u128(0x0190_f0f0_0000_7000_8000_0000_0000_0001)
            }
        );
    }
}

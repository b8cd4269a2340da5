//! The account's security history (built-in accounts; ASVS 2.2.3, 2.5.5): a notice of the
//! unread events that came from another session ("Your password was changed on …", "New
//! sign-in on … from …"), with "Review sessions" and "Dismiss", and "Security activity" in
//! the user menu listing all of it.

use confab_api_types::{ReadActivity, SecurityEventInfo, SecurityEventKind};
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::hooks::use_session;
use crate::services::{api::Api, browser};

const ACTIVITY: &str = "/api/auth/local/activity";

/// The sentence for an event that happened `when` (a local date and time).
pub fn describe(event: &SecurityEventInfo, when: &str) -> String {
    let device = event
        .user_agent
        .as_deref()
        .map(str::trim)
        .filter(|ua| !ua.is_empty())
        .unwrap_or("an unknown browser");
    match event.kind {
        SecurityEventKind::PasswordChanged => {
            format!("Your password was changed on {when} ({device}).")
        }
        SecurityEventKind::PasswordReset => {
            format!("Your password was reset with an administrator's link on {when} ({device}).")
        }
        SecurityEventKind::SignedIn => match event.address.as_deref() {
            Some(address) => format!("New sign-in on {when} from {device}, {address}."),
            None => format!("New sign-in on {when} from {device}."),
        },
        SecurityEventKind::SignedOutEverywhere => {
            format!("All sessions were signed out on {when} ({device}).")
        }
    }
}

/// What the notice tells of: unread events that did not come from this session.
pub fn to_notice(events: &[SecurityEventInfo]) -> Vec<SecurityEventInfo> {
    events
        .iter()
        .filter(|e| e.unread && !e.current)
        .cloned()
        .collect()
}

/// The time of the newest event of `events` (newest first, as the server lists them).
#[cfg_attr(not(target_arch = "wasm32"), expect(clippy::clone_on_copy))]
fn newest_shown(events: &[SecurityEventInfo]) -> Option<confab_api_types::Timestamp> {
    events.first().map(|e| e.at.clone())
}

/// How many sentences the notice shows before "and N more".
const SHOWN: usize = 3;

#[derive(Properties, PartialEq)]
pub struct SecurityNoticeProps {
    /// "Review sessions": opens the Sessions view.
    pub on_review: Callback<()>,
}

/// The notice of unread security events from elsewhere, loaded once when the signed-in
/// layout appears (after sign-in, or on load).
#[component]
pub fn SecurityNotice(props: &SecurityNoticeProps) -> Html {
    let session = use_session();
    let events = use_state(Vec::<SecurityEventInfo>::new);
    let error = use_state(|| None::<String>);
    let local = session.config.auth.provider == "local";
    {
        let (events, api) = (events.clone(), session.api.clone());
        use_effect_with(local, move |local| {
            if *local {
                spawn_local(async move {
                    if let Ok(all) = api.get::<Vec<SecurityEventInfo>>(ACTIVITY).await {
                        events.set(to_notice(&all));
                    }
                });
            }
        });
    }
    if !local || events.is_empty() {
        return html! {};
    }
    let dismiss = {
        let (events, error, api) = (events.clone(), error.clone(), session.api.clone());
        Callback::from(move |_: MouseEvent| {
            let (events, error, api) = (events.clone(), error.clone(), api.clone());
            // Only what was shown (newest first): an event that happened since stays unread.
            let up_to = newest_shown(&events);
            spawn_local(async move {
                let Ok(body) = crate::json::encode(&ReadActivity { up_to }) else {
                    return;
                };
                let path = format!("{ACTIVITY}/read");
                let answer = api
                    .request("POST", &path, Some(&body), "application/json", None)
                    .await;
                match answer.map(drop) {
                    Ok(()) => events.set(Vec::new()),
                    Err(e) => error.set(Some(e.describe())),
                }
            });
        })
    };
    let review = {
        let on_review = props.on_review.clone();
        Callback::from(move |_: MouseEvent| on_review.emit(()))
    };
    let more = events.len().saturating_sub(SHOWN);
    html! {
        <div class="notice-bar">
            <section class="notice stack security-notice" aria-label="Security notice">
                <strong>{ "Security activity on your account" }</strong>
                <ul class="stack">
                    { for events.iter().take(SHOWN).map(|e| html! {
                        <li key={e.id.to_string()}>{ describe(e, &browser::local_time(&e.at)) }</li>
                    }) }
                </ul>
                if more > 0 {
                    <p class="muted small">{ format!("and {more} more under Security activity.") }</p>
                }
                <p class="muted small">{ "If this was not you, review your sessions and change your password." }</p>
                if let Some(e) = &*error {
                    <p class="error small">{ e.clone() }</p>
                }
                <div class="row">
                    <button type="button" class="button primary small" onclick={review}>{ "Review sessions" }</button>
                    <button type="button" class="button ghost small" onclick={dismiss}>{ "Dismiss" }</button>
                </div>
            </section>
        </div>
    }
}

async fn load(api: Api, list: UseStateHandle<Option<Result<Vec<SecurityEventInfo>, String>>>) {
    let answer = api
        .get::<Vec<SecurityEventInfo>>(ACTIVITY)
        .await
        .map_err(|e| e.describe());
    list.set(Some(answer));
}

/// "Security activity" in the user menu: a toggle that lists the account's history, newest
/// first (in the Sessions view's style).
#[component]
pub fn SecurityActivity() -> Html {
    let session = use_session();
    let open = use_state(|| false);
    let list = use_state(|| None::<Result<Vec<SecurityEventInfo>, String>>);
    if session.config.auth.provider != "local" {
        return html! {};
    }
    let toggle = {
        let (open, list, api) = (open.clone(), list.clone(), session.api.clone());
        Callback::from(move |_: MouseEvent| {
            let opening = !*open;
            open.set(opening);
            if opening {
                list.set(None);
                spawn_local(load(api.clone(), list.clone()));
            }
        })
    };
    html! {
        <div class="stack">
            <button type="button" class="button ghost small" onclick={toggle}
                aria-expanded={open.to_string()}>{ "Security activity" }</button>
            if *open {
                { match &*list {
                    None => html! { <p class="muted" role="status">{ "Loading security activity…" }</p> },
                    Some(Err(text)) => html! { <p class="error" role="alert">{ text.clone() }</p> },
                    Some(Ok(items)) if items.is_empty() => html! { <p class="muted">{ "Nothing yet." }</p> },
                    Some(Ok(items)) => html! {
                        <ul class="stack sessions" aria-label="Security activity">
                            { for items.iter().map(|e| {
                                let text = describe(e, &browser::local_time(&e.at));
                                html! {
                                    <li key={e.id.to_string()}>
                                        <span title={text.clone()}>{ text.clone() }</span>
                                        if e.current {
                                            <span class="muted">{ " · this device" }</span>
                                        }
                                        if e.unread {
                                            <span class="muted">{ " · new" }</span>
                                        }
                                    </li>
                                }
                            }) }
                        </ul>
                    },
                } }
            }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: SecurityEventKind, unread: bool, current: bool) -> SecurityEventInfo {
        serde_json::from_value(serde_json::json!({
            "id": uuid::Uuid::nil(), "kind": kind, "at": "2026-12-07T08:00:00Z",
            "user_agent": "Phone Browser/2.0", "address": "203.0.113.9",
            "unread": unread, "current": current,
        }))
        .unwrap()
    }

    #[test]
    fn each_kind_reads_as_a_sentence_with_when_and_where() {
        let when = "07/12/2026, 09:00:00";
        assert_eq!(
            describe(
                &event(SecurityEventKind::PasswordChanged, true, false),
                when
            ),
            "Your password was changed on 07/12/2026, 09:00:00 (Phone Browser/2.0)."
        );
        assert_eq!(
            describe(&event(SecurityEventKind::SignedIn, true, false), when),
            "New sign-in on 07/12/2026, 09:00:00 from Phone Browser/2.0, 203.0.113.9."
        );
        let mut bare = event(SecurityEventKind::SignedIn, true, false);
        bare.user_agent = Some("  ".into());
        bare.address = None;
        assert_eq!(
            describe(&bare, when),
            "New sign-in on 07/12/2026, 09:00:00 from an unknown browser."
        );
        assert!(
            describe(&event(SecurityEventKind::PasswordReset, true, false), when)
                .starts_with("Your password was reset")
        );
        assert!(
            describe(
                &event(SecurityEventKind::SignedOutEverywhere, true, false),
                when
            )
            .starts_with("All sessions were signed out")
        );
    }

    #[test]
    fn the_notice_tells_only_of_unread_events_from_elsewhere() {
        let events = [
            event(SecurityEventKind::SignedIn, true, true),
            event(SecurityEventKind::PasswordChanged, true, false),
            event(SecurityEventKind::SignedIn, false, false),
        ];
        let shown = to_notice(&events);
        assert_eq!(shown, vec![events[1].clone()]);
    }
}

//! The message box: Enter sends, Shift+Enter starts a new line; Stop during generation.

use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ComposerProps {
    pub on_send: Callback<String>,
    pub on_stop: Callback<()>,
    pub generating: bool,
    /// The server's limit on a message's length (characters).
    pub max_chars: usize,
    /// Text handed back after the server refused its send (a quota): put back in the box.
    #[prop_or_default]
    pub returned: Option<Returned>,
}

/// A refused message's text, handed back to the composer; `seq` tells two hand-backs of the
/// same text apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Returned {
    pub seq: u32,
    pub text: String,
}

/// What the box holds once a refused message's text comes back: the refused text, followed by
/// whatever was typed since the send (nothing typed is lost, the refused text comes first).
pub fn text_after_refusal(refused: &str, typed_since: &str) -> String {
    if typed_since.trim().is_empty() {
        refused.to_owned()
    } else if typed_since == refused {
        typed_since.to_owned()
    } else {
        format!("{refused}\n\n{typed_since}")
    }
}

/// True when a key press should send rather than insert a new line.
pub fn is_send_key(key: &str, shift: bool, composing: bool) -> bool {
    key == "Enter" && !shift && !composing
}

#[component]
pub fn Composer(props: &ComposerProps) -> Html {
    let input = use_node_ref();
    let session = crate::hooks::use_session();
    let person = session.user.as_ref().map(|u| u.name.clone());
    // Text typed when the last session ended (the same person's), restored once.
    let restored = use_memo((), move |_| {
        person.and_then(|p| crate::services::draft::take(&p))
    });
    let draft = {
        let restored = restored.clone();
        use_state(move || (*restored).clone().unwrap_or_default())
    };
    {
        let (input, restored) = (input.clone(), restored.clone());
        use_effect_with((), move |_| {
            if let (Some(text), Some(field)) = (&*restored, input.cast::<HtmlTextAreaElement>()) {
                field.set_value(text);
                crate::services::draft::typed(text);
            }
        });
    }

    {
        let (input, draft) = (input.clone(), draft.clone());
        use_effect_with(props.returned.clone(), move |returned| {
            if let (Some(r), Some(field)) = (returned, input.cast::<HtmlTextAreaElement>()) {
                let text = text_after_refusal(&r.text, &field.value());
                field.set_value(&text);
                crate::services::draft::typed(&text);
                draft.set(text);
                let _ = field.focus();
            }
        });
    }

    let submit = {
        let (input, draft, on_send, generating, max_chars) = (
            input.clone(),
            draft.clone(),
            props.on_send.clone(),
            props.generating,
            props.max_chars,
        );
        Callback::from(move |()| {
            let Some(field) = input.cast::<HtmlTextAreaElement>() else {
                return;
            };
            let text = field.value();
            if generating || text.trim().is_empty() || text.chars().count() > max_chars {
                return;
            }
            on_send.emit(text);
            field.set_value("");
            draft.set(String::new());
            crate::services::draft::typed("");
            let _ = field.focus();
        })
    };
    let onsubmit = {
        let submit = submit.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            submit.emit(());
        })
    };
    let onkeydown = {
        let submit = submit.clone();
        Callback::from(move |e: KeyboardEvent| {
            if is_send_key(&e.key(), e.shift_key(), e.is_composing()) {
                e.prevent_default();
                submit.emit(());
            }
        })
    };
    let oninput = {
        let draft = draft.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(t) = e.target_dyn_into::<HtmlTextAreaElement>() {
                crate::services::draft::typed(&t.value());
                draft.set(t.value());
            }
        })
    };
    let stop = {
        let on_stop = props.on_stop.clone();
        Callback::from(move |_| on_stop.emit(()))
    };
    let count = draft.chars().count();
    let too_long = count > props.max_chars;

    html! {
        <form class="composer" {onsubmit}>
            <label for="message-input" class="visually-hidden">{ "Message" }</label>
            <div class="composer-box">
                <textarea ref={input} id="message-input" name="message" rows="1"
                    placeholder="Write a message…" {onkeydown} {oninput}
                    aria-describedby="composer-hint" aria-invalid={too_long.to_string()} />
                <div class="composer-actions">
                    if props.generating {
                        <button type="button" class="button stop" onclick={stop}>
                            <span class="stop-icon" aria-hidden="true"></span>{ "Stop" }
                        </button>
                    }
                    <button type="submit" class="button primary" disabled={props.generating}>{ "Send" }</button>
                </div>
            </div>
            <p id="composer-hint" class={classes!("composer-hint", too_long.then_some("error"))}>
                if too_long {
                    { format!("{count} of {} characters: shorten the message to send it.", props.max_chars) }
                } else {
                    { "Enter to send · Shift+Enter for a new line" }
                }
            </p>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_sends_and_shift_enter_does_not() {
        assert!(is_send_key("Enter", false, false));
        assert!(!is_send_key("Enter", true, false));
        assert!(!is_send_key("a", false, false));
    }

    #[test]
    fn a_refused_message_comes_back_into_an_empty_box() {
        assert_eq!(text_after_refusal("Hello there", ""), "Hello there");
        assert_eq!(text_after_refusal("Hello there", "  \n"), "Hello there");
    }

    #[test]
    fn a_refused_message_comes_back_before_what_was_typed_since() {
        assert_eq!(
            text_after_refusal("Hello there", "and more"),
            "Hello there\n\nand more"
        );
        assert_eq!(text_after_refusal("same", "same"), "same");
    }

    #[test]
    fn enter_while_composing_text_with_an_input_method_does_not_send() {
        assert!(!is_send_key("Enter", false, true));
    }
}

//! Clerk sign-in, driven through `window.Clerk` by reflection (no JavaScript file of ours).
//!
//! Clerk's browser script is the one thing loaded from elsewhere: from the instance's
//! Frontend API host, which `/api/config` names (`auth.clerk_frontend_api`, derived by the
//! server from the publishable key), only when it says `clerk`.

use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_futures::JsFuture;

/// The URL of Clerk's browser script on the instance's Frontend API.
pub fn script_url(host: &str) -> String {
    format!("https://{host}/npm/@clerk/clerk-js@5/dist/clerk.browser.js")
}

fn clerk() -> Option<JsValue> {
    let w = web_sys::window()?;
    let c = Reflect::get(&w, &JsValue::from_str("Clerk")).ok()?;
    c.is_object().then_some(c)
}

fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn call(target: &JsValue, method: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = get(target, method).dyn_into()?;
    let array: Array = args.iter().copied().collect();
    f.apply(target, &array)
}

async fn await_value(v: JsValue) -> Result<JsValue, JsValue> {
    match v.dyn_into::<Promise>() {
        Ok(p) => JsFuture::from(p).await,
        Err(v) => Ok(v),
    }
}

/// Loads Clerk's script (once) from the Frontend API `host` and waits for `Clerk.load()`.
pub async fn load(host: &str, publishable_key: &str) -> Result<(), String> {
    if clerk().is_none() {
        inject_script(&script_url(host), publishable_key)
            .await
            .map_err(|_| {
                "Could not load Clerk's sign-in. Check your connection and reload.".to_owned()
            })?;
    }
    let c = clerk().ok_or_else(|| "Clerk's sign-in did not start.".to_owned())?;
    let loading = call(&c, "load", &[]).map_err(|_| "Clerk's sign-in did not start.".to_owned())?;
    await_value(loading)
        .await
        .map(drop)
        .map_err(|_| "Clerk's sign-in did not start.".to_owned())
}

async fn inject_script(src: &str, publishable_key: &str) -> Result<(), JsValue> {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| JsValue::from_str("no document"))?;
    let script: web_sys::HtmlScriptElement = document.create_element("script")?.dyn_into()?;
    script.set_src(src);
    script.set_async(true);
    script.set_cross_origin(Some("anonymous"));
    script.set_attribute("data-clerk-publishable-key", publishable_key)?;
    let mut handlers: Vec<Closure<dyn FnMut()>> = Vec::new();
    let loaded = Promise::new(&mut |resolve, reject| {
        let ok = Closure::<dyn FnMut()>::new(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let failed = Closure::<dyn FnMut()>::new(move || {
            let _ = reject.call0(&JsValue::NULL);
        });
        script.set_onload(Some(ok.as_ref().unchecked_ref()));
        script.set_onerror(Some(failed.as_ref().unchecked_ref()));
        handlers.push(ok);
        handlers.push(failed);
    });
    document
        .head()
        .ok_or_else(|| JsValue::from_str("no head"))?
        .append_child(&script)?;
    let result = JsFuture::from(loaded).await.map(drop);
    drop(handlers);
    result
}

/// True when Clerk has a signed-in user.
pub fn is_signed_in() -> bool {
    clerk().is_some_and(|c| {
        let user = get(&c, "user");
        !user.is_null() && !user.is_undefined()
    })
}

/// A name for the signed-in user: email, username or full name.
pub fn user_label() -> String {
    let Some(c) = clerk() else {
        return String::new();
    };
    let user = get(&c, "user");
    let email = get(&get(&user, "primaryEmailAddress"), "emailAddress");
    [email, get(&user, "username"), get(&user, "fullName")]
        .into_iter()
        .find_map(|v| v.as_string().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "Signed in".to_owned())
}

/// A fresh session token (`Clerk.session.getToken()`); `None` when signed out.
pub async fn session_token() -> Result<Option<String>, JsValue> {
    let c = clerk().ok_or_else(|| JsValue::from_str("Clerk is not loaded"))?;
    let session = get(&c, "session");
    if session.is_null() || session.is_undefined() {
        return Ok(None);
    }
    Ok(await_value(call(&session, "getToken", &[])?)
        .await?
        .as_string())
}

/// Shows Clerk's sign-in form inside `el`.
pub fn mount_sign_in(el: &web_sys::Element) {
    if let Some(c) = clerk() {
        let _ = call(&c, "mountSignIn", &[el.as_ref()]);
    }
}

/// Removes Clerk's sign-in form from `el`.
pub fn unmount_sign_in(el: &web_sys::Element) {
    if let Some(c) = clerk() {
        let _ = call(&c, "unmountSignIn", &[el.as_ref()]);
    }
}

/// Signs out of Clerk.
pub async fn sign_out() {
    if let Some(c) = clerk()
        && let Ok(p) = call(&c, "signOut", &[])
    {
        let _ = await_value(p).await;
    }
}

/// A subscription to Clerk's changes (sign-in, sign-out); ends when dropped.
pub struct Listener {
    _callback: Closure<dyn FnMut(JsValue)>,
    unsubscribe: Option<Function>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(f) = &self.unsubscribe {
            let _ = f.call0(&JsValue::NULL);
        }
    }
}

/// Calls `on_change` whenever Clerk's user or session changes.
pub fn listen(mut on_change: impl FnMut() + 'static) -> Option<Listener> {
    let c = clerk()?;
    let callback = Closure::<dyn FnMut(JsValue)>::new(move |_state: JsValue| on_change());
    let unsubscribe = call(&c, "addListener", &[callback.as_ref()])
        .ok()
        .and_then(|f| f.dyn_into().ok());
    Some(Listener {
        _callback: callback,
        unsubscribe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_comes_from_the_frontend_api() {
        assert_eq!(
            script_url("clerk.example.com"),
            "https://clerk.example.com/npm/@clerk/clerk-js@5/dist/clerk.browser.js"
        );
    }
}

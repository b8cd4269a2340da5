//! Small helpers over the browser's APIs.

use confab_api_types::Timestamp;
use js_sys::Promise;
use uuid::Uuid;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The page's window (`None` outside a browser).
pub fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

/// A random (v4) UUID from `crypto.getRandomValues`, which, unlike `crypto.randomUUID`,
/// also works on pages served over plain http from a non-loopback address.
pub fn random_uuid() -> Uuid {
    let mut bytes = [0u8; 16];
    let filled = window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        for b in &mut bytes {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _reject| {
        if let Some(w) = window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Offers a blob to the person as a download named `filename`.
pub fn save_blob(blob: &web_sys::Blob, filename: &str) -> Result<(), JsValue> {
    let document = window()
        .and_then(|w| w.document())
        .ok_or_else(|| JsValue::from_str("no document"))?;
    let url = web_sys::Url::create_object_url_with_blob(blob)?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    a.set_href(&url);
    a.set_download(filename);
    a.set_hidden(true);
    if let Some(body) = document.body() {
        body.append_child(&a)?;
        a.click();
        body.remove_child(&a)?;
    }
    // Let the download start before the URL is revoked.
    wasm_bindgen_futures::spawn_local(async move {
        sleep(10_000).await;
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}

/// Copies text to the clipboard; false when the browser refused, has no clipboard here (a
/// page over plain http from another machine), or did not answer within two seconds.
pub async fn copy_text(text: &str) -> bool {
    let Some(w) = window() else { return false };
    let navigator = w.navigator();
    let available = js_sys::Reflect::get(&navigator, &"clipboard".into())
        .is_ok_and(|c| !c.is_undefined() && !c.is_null());
    if !available {
        return false;
    }
    let write = JsFuture::from(navigator.clipboard().write_text(text));
    let timeout = sleep(2000);
    match futures_util::future::select(Box::pin(write), Box::pin(timeout)).await {
        futures_util::future::Either::Left((written, _)) => written.is_ok(),
        futures_util::future::Either::Right(_) => false,
    }
}

/// A timestamp in the person's local time and locale.
pub fn local_time(ts: &Timestamp) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(ts.timestamp_millis() as f64));
    String::from(date.to_locale_string("default", &JsValue::UNDEFINED))
}

/// A byte count for people: "950 B", "12.3 KB", "4.0 MB".
pub fn format_bytes(n: u64) -> String {
    // Integer arithmetic only: float formatting would add kilobytes to the wasm.
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut divisor: u64 = 1000;
    let mut unit = 0;
    // Tenths of the unit, rounded half up, in u64 without overflow (128-bit division and
    // formatting would add kilobytes too).
    let tenths = |d: u64| {
        let tenth = d / 10;
        n / tenth + u64::from(n % tenth >= tenth / 2)
    };
    while tenths(divisor) >= 10_000 && unit + 1 < UNITS.len() {
        divisor *= 1000;
        unit += 1;
    }
    let t = tenths(divisor);
    format!("{}.{} {}", t / 10, t % 10, UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(999), "999 B");
        assert_eq!(format_bytes(1000), "1.0 KB");
        assert_eq!(format_bytes(12_345), "12.3 KB");
        assert_eq!(format_bytes(999_999), "1.0 MB");
        assert_eq!(format_bytes(26_214_400), "26.2 MB");
        assert_eq!(format_bytes(1_949), "1.9 KB");
        assert_eq!(format_bytes(1_950), "2.0 KB");
        assert_eq!(format_bytes(999_949_999_999), "999.9 GB");
        assert_eq!(format_bytes(u64::MAX), "18446744.1 TB");
    }
}

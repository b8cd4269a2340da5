//! The "Usage" page (tokens per day as a bar chart and a table, totals by model and project,
//! the quota left) and the "Admin" page (users, their usage, an editable quota).

use confab_api_types::{AdminUser, QuotaOverride, QuotaStatus, UsageReport};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::hooks::use_session;

/// One bar of the chart: its day, tokens, and height in the chart's units (0–100).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    pub date: String,
    pub tokens: u64,
    pub height: u64,
}

/// The bars of a per-day report, scaled so the highest is 100 high.
pub fn bars(report: &UsageReport) -> Vec<Bar> {
    let highest = report
        .groups
        .iter()
        .map(|g| g.sums.total_tokens)
        .max()
        .unwrap_or(0)
        .max(1);
    report
        .groups
        .iter()
        .map(|g| Bar {
            date: g.key.clone(),
            tokens: g.sums.total_tokens,
            height: g.sums.total_tokens * 100 / highest,
        })
        .collect()
}

/// The quota left, in words; `None` when unlimited.
pub fn remaining(quota: &QuotaStatus) -> Vec<String> {
    let mut lines = Vec::new();
    if let (Some(limit), Some(left)) = (quota.tokens_per_day, quota.remaining_today) {
        lines.push(format!("{left} of {limit} tokens left today"));
    }
    if let (Some(limit), Some(left)) = (quota.tokens_per_month, quota.remaining_this_month) {
        lines.push(format!("{left} of {limit} tokens left this month"));
    }
    lines
}

/// The composer's quiet warning when less than 10% of a quota is left; `None` otherwise.
pub fn low_quota_warning(quota: &QuotaStatus) -> Option<String> {
    let low = |limit: Option<u64>, left: Option<u64>| match (limit, left) {
        (Some(limit), Some(left)) => left.saturating_mul(10) < limit,
        _ => false,
    };
    if low(quota.tokens_per_day, quota.remaining_today) {
        let left = quota.remaining_today.unwrap_or(0);
        return Some(format!("Less than 10% of today's tokens left ({left})."));
    }
    if low(quota.tokens_per_month, quota.remaining_this_month) {
        let left = quota.remaining_this_month.unwrap_or(0);
        return Some(format!(
            "Less than 10% of this month's tokens left ({left})."
        ));
    }
    None
}

fn chart(report: &UsageReport) -> Html {
    let bars = bars(report);
    if bars.is_empty() {
        return html! { <p class="muted">{ "No tokens used in this period." }</p> };
    }
    let width = 40 * bars.len();
    html! {
        <svg class="usage-chart" role="img" aria-label="Tokens per day, bar chart"
            viewBox={format!("0 0 {width} 140")} width={width.to_string()} height="140">
            { for bars.iter().enumerate().map(|(i, bar)| {
                let x = i * 40 + 8;
                let y = 110 - bar.height;
                html! {
                    <g>
                        <title>{ format!("{}: {} tokens", bar.date, bar.tokens) }</title>
                        <rect x={x.to_string()} y={y.to_string()} width="24"
                            height={bar.height.max(1).to_string()} class="usage-bar" />
                        <text x={(x + 12).to_string()} y="128" text-anchor="middle" font-size="9">
                            { bar.date.get(5..).unwrap_or(&bar.date).to_owned() }
                        </text>
                        <text x={(x + 12).to_string()} y={(y.saturating_sub(3)).to_string()} text-anchor="middle" font-size="8">
                            { bar.tokens.to_string() }
                        </text>
                    </g>
                }
            }) }
        </svg>
    }
}

fn totals(caption: &str, report: &UsageReport) -> Html {
    html! {
        <table class="usage-table">
            <caption>{ caption }</caption>
            <thead><tr><th scope="col">{ "Name" }</th><th scope="col">{ "Tokens" }</th></tr></thead>
            <tbody>
                { for report.groups.iter().map(|g| html! {
                    <tr>
                        <td>{ if g.key.is_empty() { "(deleted)".to_owned() } else { g.key.clone() } }</td>
                        <td>{ g.sums.total_tokens }</td>
                    </tr>
                }) }
            </tbody>
        </table>
    }
}

/// The signed-in user's usage.
#[component]
pub fn UsagePage() -> Html {
    let session = use_session();
    let reports = use_state(|| None::<Result<(UsageReport, UsageReport, UsageReport), String>>);
    {
        let (reports, api) = (reports.clone(), session.api.clone());
        use_effect_with((), move |()| {
            spawn_local(async move {
                let by_day = api.get::<UsageReport>("/api/usage?group_by=day").await;
                let by_model = api.get::<UsageReport>("/api/usage?group_by=model").await;
                let by_project = api.get::<UsageReport>("/api/usage?group_by=project").await;
                let result = match (by_day, by_model, by_project) {
                    (Ok(d), Ok(m), Ok(p)) => Ok((d, m, p)),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e.describe()),
                };
                reports.set(Some(result));
            });
        });
    }
    let body = match &*reports {
        None => html! { <p class="muted" role="status">{ "Loading usage…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e }</p> },
        Some(Ok((by_day, by_model, by_project))) => {
            let quota = by_day.quota.clone().unwrap_or_default();
            let left = remaining(&quota);
            html! {
                <>
                    <p>{ format!("{} to {}: {} tokens", by_day.from, by_day.to, by_day.total.total_tokens) }</p>
                    if left.is_empty() {
                        <p class="muted">{ "No quota: your tokens are not limited." }</p>
                    } else {
                        <ul class="quota">{ for left.iter().map(|l| html! { <li>{ l }</li> }) }</ul>
                    }
                    { chart(by_day) }
                    <table class="usage-table">
                        <caption>{ "Tokens per day" }</caption>
                        <thead><tr><th scope="col">{ "Date" }</th><th scope="col">{ "Tokens" }</th></tr></thead>
                        <tbody>
                            { for by_day.groups.iter().map(|g| html! {
                                <tr><td>{ &g.key }</td><td>{ g.sums.total_tokens }</td></tr>
                            }) }
                        </tbody>
                    </table>
                    { totals("Tokens by model", by_model) }
                    { totals("Tokens by project", by_project) }
                </>
            }
        }
    };
    html! {
        <section class="page">
            <h1>{ "Usage" }</h1>
            { body }
        </section>
    }
}

/// A quota field's text: nothing for the default, else a whole number of tokens.
pub fn parse_quota(raw: &str) -> Result<Option<u64>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<u64>()
        .map(Some)
        .map_err(|_| "Enter a whole number of tokens, or nothing for the default.".to_owned())
}

#[derive(Properties, PartialEq)]
struct QuotaFormProps {
    user: AdminUser,
    on_saved: Callback<()>,
}

#[component]
fn QuotaForm(props: &QuotaFormProps) -> Html {
    let session = use_session();
    let daily = use_node_ref();
    let monthly = use_node_ref();
    let error = use_state(|| None::<String>);
    let user_id = props.user.user_id.clone();
    let onsubmit = {
        let (daily, monthly, error, api, on_saved, user_id) = (
            daily.clone(),
            monthly.clone(),
            error.clone(),
            session.api.clone(),
            props.on_saved.clone(),
            user_id.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (Some(daily), Some(monthly)) = (
                daily.cast::<HtmlInputElement>(),
                monthly.cast::<HtmlInputElement>(),
            ) else {
                return;
            };
            let parsed = parse_quota(&daily.value())
                .and_then(|d| parse_quota(&monthly.value()).map(|m| (d, m)));
            let (tokens_per_day, tokens_per_month) = match parsed {
                Ok(limits) => limits,
                Err(e) => {
                    error.set(Some(e));
                    return;
                }
            };
            let body = QuotaOverride {
                tokens_per_day,
                tokens_per_month,
            };
            let (api, error, on_saved, user_id) = (
                api.clone(),
                error.clone(),
                on_saved.clone(),
                user_id.clone(),
            );
            spawn_local(async move {
                let path = format!(
                    "/api/admin/users/{}/quota",
                    crate::services::api::encode_query(&user_id)
                );
                match api.send::<_, AdminUser>("PUT", &path, &body).await {
                    Ok(_) => {
                        error.set(None);
                        on_saved.emit(());
                    }
                    Err(e) => error.set(Some(e.describe())),
                }
            });
        })
    };
    let shown = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let per_day = shown(props.user.quota_override.tokens_per_day);
    let per_month = shown(props.user.quota_override.tokens_per_month);
    html! {
        <form class="inline-form" {onsubmit}>
            <input ref={daily} type="text" inputmode="numeric" placeholder="per day"
                aria-label={format!("Daily quota for {user_id}")} value={per_day} />
            <input ref={monthly} type="text" inputmode="numeric" placeholder="per month"
                aria-label={format!("Monthly quota for {user_id}")} value={per_month} />
            <button type="submit" class="button small">{ "Save quota" }</button>
            if let Some(e) = &*error {
                <p class="error small" role="alert">{ e }</p>
            }
        </form>
    }
}

/// Users with their usage and quota (administrators only: the server answers 404 otherwise).
#[component]
pub fn AdminPage() -> Html {
    let session = use_session();
    let users = use_state(|| None::<Result<Vec<AdminUser>, String>>);
    let version = use_state(|| 0u32);
    {
        let (users, api) = (users.clone(), session.api.clone());
        use_effect_with(*version, move |_| {
            spawn_local(async move {
                let result = api.get::<Vec<AdminUser>>("/api/admin/users").await;
                users.set(Some(result.map_err(|e| e.describe())));
            });
        });
    }
    let on_saved = {
        let version = version.clone();
        Callback::from(move |()| version.set(version.wrapping_add(1)))
    };
    let body = match &*users {
        None => html! { <p class="muted" role="status">{ "Loading users…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e }</p> },
        Some(Ok(list)) => html! {
            <table class="usage-table">
                <caption>{ "Users" }</caption>
                <thead><tr>
                    <th scope="col">{ "User" }</th><th scope="col">{ "Today" }</th>
                    <th scope="col">{ "This month" }</th><th scope="col">{ "Quota (daily, monthly)" }</th>
                </tr></thead>
                <tbody>
                    { for list.iter().map(|u| html! {
                        <tr key={u.user_id.clone()}>
                            <td>{ &u.user_id }</td>
                            <td>{ u.quota.used_today }</td>
                            <td>{ u.quota.used_this_month }</td>
                            <td><QuotaForm user={u.clone()} on_saved={on_saved.clone()} /></td>
                        </tr>
                    }) }
                </tbody>
            </table>
        },
    };
    html! {
        <section class="page">
            <h1>{ "Admin" }</h1>
            { body }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_api_types::{TokenSums, UsageGroup};

    fn report(days: &[(&str, u64)]) -> UsageReport {
        UsageReport {
            from: "2026-12-01".into(),
            to: "2026-12-07".into(),
            group_by: "day".into(),
            groups: days
                .iter()
                .map(|(d, t)| UsageGroup {
                    key: (*d).into(),
                    sums: TokenSums {
                        total_tokens: *t,
                        ..TokenSums::default()
                    },
                })
                .collect(),
            total: TokenSums::default(),
            quota: None,
        }
    }

    #[test]
    fn a_quota_field_is_a_whole_number_or_nothing() {
        assert_eq!(parse_quota(" 1000 "), Ok(Some(1000)));
        assert_eq!(parse_quota("  "), Ok(None));
        assert!(parse_quota("1k").is_err());
        assert!(parse_quota("-5").is_err());
    }

    #[test]
    fn bars_are_scaled_to_the_highest_day() {
        let bars = bars(&report(&[("2026-12-01", 50), ("2026-12-02", 200)]));
        assert_eq!(bars[0].height, 25);
        assert_eq!(bars[1].height, 100);
        assert_eq!(bars[1].date, "2026-12-02");
    }

    #[test]
    fn remaining_quota_is_said_per_limit() {
        let quota = QuotaStatus {
            tokens_per_day: Some(100),
            remaining_today: Some(40),
            ..QuotaStatus::default()
        };
        assert_eq!(
            remaining(&quota),
            vec!["40 of 100 tokens left today".to_owned()]
        );
        assert!(remaining(&QuotaStatus::default()).is_empty());
    }

    #[test]
    fn the_warning_shows_below_ten_percent_only() {
        let mut quota = QuotaStatus {
            tokens_per_day: Some(100),
            remaining_today: Some(10),
            ..QuotaStatus::default()
        };
        assert_eq!(low_quota_warning(&quota), None);
        quota.remaining_today = Some(9);
        assert_eq!(
            low_quota_warning(&quota).as_deref(),
            Some("Less than 10% of today's tokens left (9).")
        );
        assert_eq!(low_quota_warning(&QuotaStatus::default()), None);
    }
}

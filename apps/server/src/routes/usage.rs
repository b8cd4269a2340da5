//! `/api/usage` (the caller's own) and `/api/admin/*` usage and quotas (issue 19). Anyone
//! who is not an administrator gets 404 from every admin route's operations (a method the
//! route does not have is 405, as on every route: the routes are in the public document).

use std::sync::Arc;

use actix_web::{HttpRequest, web};
use async_trait::async_trait;
use confab_api_types as api;
use confab_core::UserId;
use confab_core::error::StoreError;
use confab_core::model::{Principal, now};
use confab_core::usage::{
    GroupBy, NaiveDate, QuotaDefaults, QuotaOverride, QuotaState, UsageEntry, UsageLedger,
    UsageRow, UserUsage,
};

use crate::error::ApiError;
use crate::extract::{Authenticated, JsonBody};
use crate::metrics::Metrics;
use crate::state::AppState;

type Json<T> = Result<web::Json<T>, ApiError>;

/// The groupings of `/api/usage`, the default first.
pub const MY_GROUPINGS: &[&str] = &["day", "model", "project"];
/// The groupings of `/api/admin/usage`, the default first.
pub const ADMIN_GROUPINGS: &[&str] = &["user", "model", "day"];

/// The range and grouping of a report.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// First UTC day (`YYYY-MM-DD`); default: 29 days before `to`.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Last UTC day, inclusive; default: today.
    #[param(value_type = Option<String>, format = Date)]
    to: Option<String>,
    /// `day` (default), `model` or `project` for `/api/usage`; `user`, `model` or `day` for
    /// `/api/admin/usage`.
    group_by: Option<String>,
}

fn parse_day(field: &str, raw: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| ApiError::Validation(format!("{field} must be a date like 2026-12-07")))
}

/// The days and grouping asked for, checked.
fn range(
    query: &UsageQuery,
    allowed: &[&str],
) -> Result<(NaiveDate, NaiveDate, GroupBy, String), ApiError> {
    let to = match &query.to {
        Some(raw) => parse_day("to", raw)?,
        None => now().date_naive(),
    };
    let from = match &query.from {
        Some(raw) => parse_day("from", raw)?,
        None => to
            .checked_sub_days(chrono::Days::new(29))
            .unwrap_or(NaiveDate::MIN),
    };
    // `from` after `to` is an empty range: a report with nothing in it.
    // Any range: the sums are grouped in the store, so a report has at most one group per
    // day, model, project or user that has entries, however long the range.
    let name = query.group_by.as_deref().unwrap_or(allowed[0]);
    let group_by = GroupBy::parse(name)
        .filter(|_| allowed.contains(&name))
        .ok_or_else(|| {
            ApiError::Validation(format!("group_by must be one of {}", allowed.join(", ")))
        })?;
    Ok((from, to, group_by, name.to_owned()))
}

fn sums(row: &UsageRow) -> api::TokenSums {
    api::TokenSums {
        input_tokens: row.tokens.input,
        cached_input_tokens: row.tokens.cached_input,
        output_tokens: row.tokens.output,
        reasoning_tokens: row.tokens.reasoning,
        total_tokens: row.tokens.total(),
        cost_micros: row.cost_micros,
        calls: row.calls,
    }
}

fn report(
    rows: Vec<UsageRow>,
    from: NaiveDate,
    to: NaiveDate,
    group_by: String,
) -> api::UsageReport {
    let mut total = api::TokenSums::default();
    let groups = rows
        .iter()
        .map(|row| {
            let s = sums(row);
            total.input_tokens += s.input_tokens;
            total.cached_input_tokens += s.cached_input_tokens;
            total.output_tokens += s.output_tokens;
            total.reasoning_tokens += s.reasoning_tokens;
            total.total_tokens += s.total_tokens;
            total.cost_micros += s.cost_micros;
            total.calls += s.calls;
            api::UsageGroup {
                key: row.key.clone(),
                sums: s,
            }
        })
        .collect();
    api::UsageReport {
        from: from.format("%Y-%m-%d").to_string(),
        to: to.format("%Y-%m-%d").to_string(),
        group_by,
        groups,
        total,
        quota: None,
    }
}

/// A user's limits in force and what is left of them.
#[must_use]
pub fn quota_status(defaults: &QuotaDefaults, state: &QuotaState) -> api::QuotaStatus {
    let limits = defaults.effective(&state.quota);
    api::QuotaStatus {
        tokens_per_day: limits.tokens_per_day,
        tokens_per_month: limits.tokens_per_month,
        used_today: state.used_day,
        used_this_month: state.used_month,
        remaining_today: limits
            .tokens_per_day
            .map(|l| l.saturating_sub(state.used_day)),
        remaining_this_month: limits
            .tokens_per_month
            .map(|l| l.saturating_sub(state.used_month)),
    }
}

/// The caller's usage over a range of days, grouped, with their quota.
#[utoipa::path(get, path = "/api/usage", tag = "usage", params(UsageQuery),
    responses((status = 200, body = api::UsageReport), (status = 401, body = api::Problem),
        (status = 400, body = api::Problem, description = "a malformed query string (e.g. a parameter given twice)"),
        (status = 422, body = api::Problem, description = "a malformed date or an unknown group_by"),
        (status = 503, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn my_usage(
    Authenticated(principal): Authenticated,
    query: web::Query<UsageQuery>,
    state: web::Data<AppState>,
) -> Json<api::UsageReport> {
    let (from, to, group_by, name) = range(&query, MY_GROUPINGS)?;
    let user = &principal.user_id;
    let (rows, quota) = futures::join!(
        state.usage.summary(Some(user), from, to, group_by),
        state.usage.quota_state(user, now().date_naive()),
    );
    let mut report = report(rows.map_err(store)?, from, to, name);
    report.quota = Some(quota_status(&state.quotas, &quota.map_err(store)?));
    Ok(web::Json(report))
}

fn store(e: StoreError) -> ApiError {
    ApiError::from(confab_core::ServiceError::from(e))
}

/// Whether the caller is an administrator: a subject in `CONFAB_ADMINS`, or a built-in
/// account marked admin.
pub async fn is_admin(req: &HttpRequest, principal: &Principal, state: &AppState) -> bool {
    if state.admins.iter().any(|a| a == principal.user_id.as_str()) {
        return true;
    }
    match &state.local {
        Some(local) => crate::routes::local::caller(req, local)
            .await
            .is_ok_and(|(account, _)| account.is_admin),
        None => false,
    }
}

/// 404 for anyone but an administrator.
async fn admin_only(
    req: &HttpRequest,
    principal: &Principal,
    state: &AppState,
) -> Result<(), ApiError> {
    if is_admin(req, principal, state).await {
        Ok(())
    } else {
        Err(ApiError::NOT_FOUND)
    }
}

/// Every user with usage this month or their own quota: usage this day and month, limits.
#[utoipa::path(get, path = "/api/admin/users", tag = "usage",
    responses((status = 200, body = Vec<api::AdminUser>), (status = 401, body = api::Problem),
        (status = 404, body = api::Problem, description = "the caller is not an administrator"),
        (status = 503, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn admin_users(
    Authenticated(principal): Authenticated,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Json<Vec<api::AdminUser>> {
    admin_only(&req, &principal, &state).await?;
    let users = state.usage.users(now().date_naive()).await.map_err(store)?;
    Ok(web::Json(
        users
            .into_iter()
            .map(|u: UserUsage| api::AdminUser {
                user_id: u.user_id.to_string(),
                quota: quota_status(&state.quotas, &u.state),
                quota_override: api::QuotaOverride {
                    tokens_per_day: u.state.quota.tokens_per_day,
                    tokens_per_month: u.state.quota.tokens_per_month,
                },
            })
            .collect(),
    ))
}

/// Set a user's own limits (`null` or absent: the default). Takes effect at their next send.
#[utoipa::path(put, path = "/api/admin/users/{user_id}/quota", tag = "usage", request_body = api::QuotaOverride,
    params(("user_id" = String, Path, description = "the user's token subject")),
    responses((status = 200, body = api::AdminUser), (status = 400, body = api::Problem), (status = 401, body = api::Problem),
        (status = 404, body = api::Problem, description = "the caller is not an administrator"),
        (status = 415, body = api::Problem), (status = 422, body = api::Problem), (status = 503, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn set_quota(
    Authenticated(principal): Authenticated,
    req: HttpRequest,
    user_id: web::Path<String>,
    JsonBody(body): JsonBody<api::QuotaOverride>,
    state: web::Data<AppState>,
) -> Json<api::AdminUser> {
    admin_only(&req, &principal, &state).await?;
    let user =
        UserId::new(user_id.into_inner()).map_err(|e| ApiError::Validation(e.to_string()))?;
    let quota = QuotaOverride {
        tokens_per_day: body.tokens_per_day,
        tokens_per_month: body.tokens_per_month,
    };
    state.usage.set_quota(&user, &quota).await.map_err(store)?;
    let now_state = state
        .usage
        .quota_state(&user, now().date_naive())
        .await
        .map_err(store)?;
    Ok(web::Json(api::AdminUser {
        user_id: user.to_string(),
        quota: quota_status(&state.quotas, &now_state),
        quota_override: body,
    }))
}

/// Every user's usage over a range of days, grouped.
#[utoipa::path(get, path = "/api/admin/usage", tag = "usage", params(UsageQuery),
    responses((status = 200, body = api::UsageReport), (status = 401, body = api::Problem),
        (status = 400, body = api::Problem, description = "a malformed query string (e.g. a parameter given twice)"),
        (status = 404, body = api::Problem, description = "the caller is not an administrator"),
        (status = 422, body = api::Problem), (status = 503, body = api::Problem)),
    security(("bearer" = [])))]
pub async fn admin_usage(
    Authenticated(principal): Authenticated,
    req: HttpRequest,
    query: web::Query<UsageQuery>,
    state: web::Data<AppState>,
) -> Json<api::UsageReport> {
    admin_only(&req, &principal, &state).await?;
    let (from, to, group_by, name) = range(&query, ADMIN_GROUPINGS)?;
    let rows = state
        .usage
        .summary(None, from, to, group_by)
        .await
        .map_err(store)?;
    Ok(web::Json(report(rows, from, to, name)))
}

/// The ledger, counting every recorded call's tokens in the metrics.
pub struct MeteredLedger {
    pub inner: Arc<dyn UsageLedger>,
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl UsageLedger for MeteredLedger {
    async fn record(&self, entry: &UsageEntry) -> Result<(), StoreError> {
        self.inner.record(entry).await?;
        self.metrics.observe_tokens(&entry.model, &entry.tokens);
        Ok(())
    }

    async fn quota_state(&self, user: &UserId, day: NaiveDate) -> Result<QuotaState, StoreError> {
        self.inner.quota_state(user, day).await
    }

    async fn quota(&self, user: &UserId) -> Result<QuotaOverride, StoreError> {
        self.inner.quota(user).await
    }

    async fn set_quota(&self, user: &UserId, quota: &QuotaOverride) -> Result<(), StoreError> {
        self.inner.set_quota(user, quota).await
    }

    async fn summary(
        &self,
        user: Option<&UserId>,
        from: NaiveDate,
        to: NaiveDate,
        group_by: GroupBy,
    ) -> Result<Vec<UsageRow>, StoreError> {
        self.inner.summary(user, from, to, group_by).await
    }

    async fn users(&self, day: NaiveDate) -> Result<Vec<UserUsage>, StoreError> {
        self.inner.users(day).await
    }
}

/// Reads a `CONFAB_PRICES` file: a table per model with `input`, `cached_input` (default:
/// `input`) and `output`, each per million tokens.
///
/// # Errors
/// A sentence naming what is wrong with the file.
pub fn load_prices(path: &std::path::Path) -> Result<confab_core::usage::PriceTable, String> {
    use figment::providers::Format as _;
    #[derive(serde::Deserialize)]
    struct Entry {
        input: f64,
        cached_input: Option<f64>,
        output: f64,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("CONFAB_PRICES: could not read {}: {e}", path.display()))?;
    let parsed: std::collections::HashMap<String, Entry> =
        figment::Figment::from(figment::providers::Toml::string(&text))
            .extract()
            .map_err(|e| format!("CONFAB_PRICES: {}: {e}", path.display()))?;
    let mut table = confab_core::usage::PriceTable::default();
    for (model, entry) in parsed {
        if [entry.input, entry.output, entry.cached_input.unwrap_or(0.0)]
            .iter()
            .any(|p| !p.is_finite() || *p < 0.0)
        {
            return Err(format!(
                "CONFAB_PRICES: the prices of {model} must be numbers of zero or more"
            ));
        }
        table.models.insert(
            model,
            confab_core::usage::Price {
                input: entry.input,
                cached_input: entry.cached_input.unwrap_or(entry.input),
                output: entry.output,
            },
        );
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::load_prices;

    #[test]
    fn a_price_file_is_read_per_model_with_cached_input_defaulting_to_input() {
        let dir = std::env::temp_dir().join(format!("confab-prices-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("prices.toml");
        std::fs::write(
            &path,
            "[\"gpt-4.1-mini\"]\ninput = 0.4\ncached_input = 0.1\noutput = 1.6\n\n[local]\ninput = 1\noutput = 2\n",
        )
        .unwrap();
        let table = load_prices(&path).unwrap();
        let mini = table.models["gpt-4.1-mini"];
        assert!((mini.cached_input - 0.1).abs() < 1e-9 && (mini.output - 1.6).abs() < 1e-9);
        assert!((table.models["local"].cached_input - 1.0).abs() < 1e-9);
        std::fs::write(&path, "[m]\ninput = -1\noutput = 2\n").unwrap();
        assert!(load_prices(&path).is_err());
        assert!(load_prices(&dir.join("missing.toml")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

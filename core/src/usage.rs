//! Usage and quotas (issue 19): every model call's tokens go into a ledger keyed by user,
//! project, conversation, model and day; a send is refused while its user is over a daily or
//! monthly token quota. Pure: the ledger is a port ([`UsageLedger`]), the arithmetic of
//! quotas, prices and estimates lives here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use chrono::NaiveDate;
use chrono::{Datelike as _, TimeZone as _, Utc};
use uuid::Uuid;

use crate::budget::estimate_text_tokens;
use crate::error::StoreError;
use crate::ids::{ConversationId, MessageId, UserId};
use crate::model::Timestamp;
use crate::ports::{Completion, LlmRequest};

/// Why a model was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A reply of a conversation.
    Chat,
    /// A conversation's title.
    Title,
}

impl Purpose {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Title => "title",
        }
    }

    /// The purpose named `name` (`chat`, `title`).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "chat" => Some(Self::Chat),
            "title" => Some(Self::Title),
            _ => None,
        }
    }
}

/// Tokens of one call, as the provider reports them. `cached_input` is part of `input`, and
/// `reasoning` part of `output` (as OpenAI reports them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCounts {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
    pub reasoning: u64,
}

impl TokenCounts {
    /// What quotas count and the usage page shows: input + output.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }
}

/// One line of the ledger: one model call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageEntry {
    pub id: Uuid,
    pub user_id: UserId,
    /// The conversation the call was for; its project is looked up by the ledger.
    pub conversation_id: Option<ConversationId>,
    /// The reply, for a chat call.
    pub message_id: Option<MessageId>,
    pub model: String,
    pub purpose: Purpose,
    pub tokens: TokenCounts,
    /// The provider reported no usage: the tokens were counted or estimated here.
    pub estimated: bool,
    /// What the call cost, in millionths of the price table's currency unit, by the prices
    /// at the time of writing; `None` without a price for the model.
    pub cost_micros: Option<i64>,
    /// When the call ended; its UTC day is the ledger's day.
    pub created_at: Timestamp,
}

impl UsageEntry {
    /// The UTC day the entry counts for.
    #[must_use]
    pub fn day(&self) -> NaiveDate {
        self.created_at.date_naive()
    }
}

/// How ledger sums are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupBy {
    Day,
    Model,
    Project,
    User,
}

impl GroupBy {
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "day" => Some(Self::Day),
            "model" => Some(Self::Model),
            "project" => Some(Self::Project),
            "user" => Some(Self::User),
            _ => None,
        }
    }
}

/// The sums of one group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageRow {
    /// The day (`YYYY-MM-DD`), model, project id (empty: no project) or user id.
    pub key: String,
    pub tokens: TokenCounts,
    /// The sum of the entries' costs (entries without a price count 0).
    pub cost_micros: i64,
    /// How many calls.
    pub calls: u64,
}

/// A user's own limits, set by an administrator; `None` is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaOverride {
    pub tokens_per_day: Option<u64>,
    pub tokens_per_month: Option<u64>,
}

/// What the quota check reads: the user's tokens this day and this month, and their
/// override.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaState {
    pub used_day: u64,
    pub used_month: u64,
    pub quota: QuotaOverride,
}

/// A user as the administrators see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserUsage {
    pub user_id: UserId,
    pub state: QuotaState,
}

/// The ledger of model calls, and the users' quota overrides.
#[async_trait]
pub trait UsageLedger: Send + Sync + 'static {
    /// MUST store the entry, with the project of its conversation at the time of writing
    /// (none when the conversation is gone or not given). Entries outlive their
    /// conversations and projects. MUST return `Conflict(DuplicateId)` for an id it has.
    async fn record(&self, entry: &UsageEntry) -> Result<(), StoreError>;

    /// MUST return the user's tokens (input + output) on `day` and in the month of `day`
    /// (its first day to `day`, inclusive), and the user's override (default when none).
    /// One read: it runs on every send.
    async fn quota_state(&self, user: &UserId, day: NaiveDate) -> Result<QuotaState, StoreError>;

    /// MUST return the user's override (default when none), as `quota_state` would: one key
    /// lookup and no sum, for the quota check when no default quota is configured.
    async fn quota(&self, user: &UserId) -> Result<QuotaOverride, StoreError>;

    /// MUST replace the user's override (both fields `None`: the defaults again).
    async fn set_quota(&self, user: &UserId, quota: &QuotaOverride) -> Result<(), StoreError>;

    /// MUST return the sums of the entries of days `from..=to` — of `user` only when given —
    /// one row per group, ordered by key ascending.
    async fn summary(
        &self,
        user: Option<&UserId>,
        from: NaiveDate,
        to: NaiveDate,
        group_by: GroupBy,
    ) -> Result<Vec<UsageRow>, StoreError>;

    /// MUST return every user with an entry in the month of `day` or an override, with their
    /// `quota_state` for `day`, ordered by user id.
    async fn users(&self, day: NaiveDate) -> Result<Vec<UserUsage>, StoreError>;
}

/// Which limit a send ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
}

/// A send refused for its user's quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub period: Period,
    pub limit: u64,
    /// When the limit resets (midnight UTC of the next day or month).
    pub resets_at: Timestamp,
    /// How long until then, when it is within a day (what `Retry-After` carries).
    pub retry_after: Option<Duration>,
}

impl QuotaExceeded {
    /// The sentence shown to the user.
    #[must_use]
    pub fn sentence(&self) -> String {
        let (which, when) = match self.period {
            Period::Day => ("daily", "tomorrow"),
            Period::Month => ("monthly", "next month"),
        };
        format!(
            "You have used your {which} quota of {} tokens. It resets {when}, at {} UTC.",
            self.limit,
            self.resets_at.format("%Y-%m-%d %H:%M")
        )
    }
}

/// The limits every user has unless an administrator set their own (`None`: unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaDefaults {
    pub tokens_per_day: Option<u64>,
    pub tokens_per_month: Option<u64>,
}

impl QuotaDefaults {
    /// The limits that apply to a user with `quota`.
    #[must_use]
    pub fn effective(&self, quota: &QuotaOverride) -> QuotaDefaults {
        QuotaDefaults {
            tokens_per_day: quota.tokens_per_day.or(self.tokens_per_day),
            tokens_per_month: quota.tokens_per_month.or(self.tokens_per_month),
        }
    }

    /// `Err` when a user in `state` may not send at `now`: they have used their daily or
    /// monthly tokens (a reply already running is not counted until it ends).
    ///
    /// # Errors
    /// The limit reached, the daily one first.
    pub fn check(&self, state: &QuotaState, now: Timestamp) -> Result<(), QuotaExceeded> {
        let limits = self.effective(&state.quota);
        if let Some(limit) = limits.tokens_per_day
            && state.used_day >= limit
        {
            return Err(refusal(Period::Day, limit, now));
        }
        if let Some(limit) = limits.tokens_per_month
            && state.used_month >= limit
        {
            return Err(refusal(Period::Month, limit, now));
        }
        Ok(())
    }

    /// Whether any limit may apply (without defaults, only users with an override have one).
    #[must_use]
    pub const fn is_unlimited(&self) -> bool {
        self.tokens_per_day.is_none() && self.tokens_per_month.is_none()
    }
}

/// The quota a turn is checked against inside `ChatHistory::begin_turn`'s transaction, so
/// that the check holds across replicas sharing one database.
///
/// Semantics: usage is recorded when a reply (or title) finishes, not when it starts. The
/// check admits a send while the tokens already recorded for the user's day and month are
/// under the effective limits, and reads them in the transaction that stores the turn. Two
/// turns checked at once (on any replicas) therefore both see every usage recorded before
/// their check: when that is at or over a limit both are refused, and when it is under both
/// may pass. Replies already running when a send is checked are not counted (their usage is
/// not known yet), so a user may end at most the quota plus the usage of the replies that
/// were running — what issue 19 allows. The check itself writes nothing, so two checks of one
/// user cannot change each other's outcome, and no lock on the user is needed for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TurnQuota {
    /// The limits every user has; the user's own override replaces them per field.
    pub defaults: QuotaDefaults,
    /// When the send was made: its UTC day and month are the ones counted.
    pub at: Timestamp,
}

impl TurnQuota {
    /// The UTC day of the send.
    #[must_use]
    pub fn day(&self) -> NaiveDate {
        self.at.date_naive()
    }

    /// Whether the user's sums must be read, given their override: only when some limit
    /// applies to them (without default quotas, only users with an override have one).
    #[must_use]
    pub fn needs_sums(&self, quota: &QuotaOverride) -> bool {
        !self.defaults.effective(quota).is_unlimited()
    }

    /// `Err` when a user in `state` may not send (see [`QuotaDefaults::check`]).
    ///
    /// # Errors
    /// The limit reached, the daily one first.
    pub fn check(&self, state: &QuotaState) -> Result<(), QuotaExceeded> {
        self.defaults.check(state, self.at)
    }
}

fn refusal(period: Period, limit: u64, now: Timestamp) -> QuotaExceeded {
    let resets_at = match period {
        Period::Day => next_day(now.date_naive()),
        Period::Month => next_month(now.date_naive()),
    };
    let left = (resets_at - now).to_std().unwrap_or_default();
    let retry_after =
        (left <= Duration::from_secs(86_400)).then(|| left.max(Duration::from_secs(1)));
    QuotaExceeded {
        period,
        limit,
        resets_at,
        retry_after,
    }
}

/// Midnight UTC after `day`.
#[must_use]
pub fn next_day(day: NaiveDate) -> Timestamp {
    let next = day.succ_opt().unwrap_or(day);
    Utc.from_utc_datetime(&next.and_time(chrono::NaiveTime::MIN))
}

/// Midnight UTC of the first day of the month after `day`'s.
#[must_use]
pub fn next_month(day: NaiveDate) -> Timestamp {
    let (year, month) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(day);
    Utc.from_utc_datetime(&first.and_time(chrono::NaiveTime::MIN))
}

/// The first day of `day`'s month.
#[must_use]
pub fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// A model's prices per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Price {
    pub input: f64,
    pub cached_input: f64,
    pub output: f64,
}

/// Prices by model (`CONFAB_PRICES`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceTable {
    pub models: HashMap<String, Price>,
}

impl PriceTable {
    /// The cost of `tokens` with `model`, in millionths of the currency unit; `None` without
    /// a price for it. Cached input is charged at its own price, the rest of the input at the
    /// input price.
    #[must_use]
    pub fn cost_micros(&self, model: &str, tokens: &TokenCounts) -> Option<i64> {
        let price = self.models.get(model)?;
        let cached = tokens.cached_input.min(tokens.input);
        #[allow(clippy::cast_precision_loss)]
        let micros = (tokens.input - cached) as f64 * price.input
            + cached as f64 * price.cached_input
            + tokens.output as f64 * price.output;
        // Per million tokens → millionths of the unit: one token at price p costs p micros.
        #[allow(clippy::cast_possible_truncation)]
        Some(micros.round() as i64)
    }
}

/// Counts tokens with a real tokenizer for the models whose tokenizer is known.
pub trait TokenCounter: Send + Sync + 'static {
    /// The number of tokens of `text` for `model`; `None` when its tokenizer is unknown.
    fn count(&self, model: &str, text: &str) -> Option<u64>;
}

/// No tokenizer at all: everything is estimated.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTokenizer;

impl TokenCounter for NoTokenizer {
    fn count(&self, _model: &str, _text: &str) -> Option<u64> {
        None
    }
}

/// Everything the chat use case needs to account for usage and enforce quotas.
#[derive(Clone)]
pub struct Accounting {
    pub ledger: Arc<dyn UsageLedger>,
    pub defaults: QuotaDefaults,
    pub prices: Arc<PriceTable>,
    pub tokenizer: Arc<dyn TokenCounter>,
}

impl Accounting {
    #[must_use]
    pub fn new(ledger: Arc<dyn UsageLedger>) -> Self {
        Self {
            ledger,
            defaults: QuotaDefaults::default(),
            prices: Arc::new(PriceTable::default()),
            tokenizer: Arc::new(NoTokenizer),
        }
    }

    /// `Ok(Err(_))` when the user is over a quota at `now`. Without default quotas only a
    /// user with an override has a limit: the others cost one key lookup, not the sums of
    /// their month.
    ///
    /// # Errors
    /// The ledger could not be read.
    pub async fn check(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Result<(), QuotaExceeded>, StoreError> {
        if self.defaults.is_unlimited()
            && self.ledger.quota(user).await? == QuotaOverride::default()
        {
            return Ok(Ok(()));
        }
        let state = self.ledger.quota_state(user, now.date_naive()).await?;
        Ok(self.defaults.check(&state, now))
    }

    /// The tokens of a call: the provider's, or counted (`estimated` when no tokenizer
    /// knows the model) from the request and the text generated.
    #[must_use]
    pub fn tokens(
        &self,
        request: &LlmRequest,
        output: &str,
        completion: Option<&Completion>,
    ) -> (TokenCounts, bool) {
        if let Some(completion) = completion
            && let Some(usage) = completion.usage
        {
            let tokens = TokenCounts {
                input: u64::from(usage.input_tokens),
                cached_input: u64::from(completion.cached_tokens.unwrap_or(0)),
                output: u64::from(usage.output_tokens),
                reasoning: u64::from(completion.reasoning_tokens.unwrap_or(0)),
            };
            return (tokens, false);
        }
        let model = &request.model;
        let sources = crate::knowledge::sources_message(&request.sources);
        let input_text = request
            .instructions
            .iter()
            .chain(sources.iter())
            .map(String::as_str)
            .chain(request.messages.iter().map(|m| m.content.as_str()))
            .collect::<Vec<_>>()
            .join("\n");
        let counted = self
            .tokenizer
            .count(model, &input_text)
            .zip(self.tokenizer.count(model, output));
        let (input, output, estimated) = match counted {
            Some((input, output)) => (input, output, false),
            None => (
                u64::from(estimate_text_tokens(&input_text)),
                u64::from(estimate_text_tokens(output)),
                true,
            ),
        };
        let tokens = TokenCounts {
            input,
            output,
            ..TokenCounts::default()
        };
        (tokens, estimated)
    }

    /// The ledger entry of a call that ended at `at`.
    #[must_use]
    pub fn entry(&self, call: Call<'_>, at: Timestamp) -> UsageEntry {
        let (tokens, estimated) = self.tokens(call.request, call.output, call.completion);
        let model = call
            .completion
            .and_then(|c| c.model.clone())
            .unwrap_or_else(|| call.request.model.clone());
        let cost_micros = self.prices.cost_micros(&model, &tokens);
        UsageEntry {
            id: Uuid::now_v7(),
            user_id: call.user.clone(),
            conversation_id: call.conversation_id,
            message_id: call.message_id,
            model,
            purpose: call.purpose,
            tokens,
            estimated,
            cost_micros,
            created_at: at,
        }
    }

    /// Writes the entry of a call; a failure is logged (the call has happened).
    pub async fn record(&self, call: Call<'_>, at: Timestamp) {
        let entry = self.entry(call, at);
        if let Err(e) = self.ledger.record(&entry).await {
            tracing::error!(user = %entry.user_id, model = %entry.model, error = %e, "could not record a model call's usage");
        }
    }
}

/// One model call, as [`Accounting::record`] is told of it.
pub struct Call<'a> {
    pub user: &'a UserId,
    pub conversation_id: Option<ConversationId>,
    pub message_id: Option<MessageId>,
    pub purpose: Purpose,
    pub request: &'a LlmRequest,
    /// The text generated (all of it, also for a failed or cancelled call).
    pub output: &'a str,
    /// The provider's end of the stream; `None` when it did not complete.
    pub completion: Option<&'a Completion>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Usage;
    use crate::ports::LlmMessage;

    fn at(text: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn state(day: u64, month: u64) -> QuotaState {
        QuotaState {
            used_day: day,
            used_month: month,
            quota: QuotaOverride::default(),
        }
    }

    #[test]
    fn no_limits_admit_everything() {
        let defaults = QuotaDefaults::default();
        assert!(
            defaults
                .check(&state(u64::MAX, u64::MAX), at("2026-12-07T10:00:00Z"))
                .is_ok()
        );
    }

    #[test]
    fn the_daily_limit_refuses_at_the_limit_and_says_when_it_resets() {
        let defaults = QuotaDefaults {
            tokens_per_day: Some(100),
            tokens_per_month: None,
        };
        let now = at("2026-12-07T22:00:00Z");
        assert!(defaults.check(&state(99, 99), now).is_ok());
        let refused = defaults.check(&state(100, 100), now).unwrap_err();
        assert_eq!(refused.period, Period::Day);
        assert_eq!(refused.resets_at, at("2026-12-08T00:00:00Z"));
        assert_eq!(refused.retry_after, Some(Duration::from_secs(7200)));
        assert_eq!(
            refused.sentence(),
            "You have used your daily quota of 100 tokens. It resets tomorrow, at 2026-12-08 00:00 UTC."
        );
    }

    #[test]
    fn the_monthly_limit_resets_next_month_without_retry_after_when_far() {
        let defaults = QuotaDefaults {
            tokens_per_day: None,
            tokens_per_month: Some(1000),
        };
        let refused = defaults
            .check(&state(0, 1000), at("2026-12-07T10:00:00Z"))
            .unwrap_err();
        assert_eq!(refused.period, Period::Month);
        assert_eq!(refused.resets_at, at("2027-01-01T00:00:00Z"));
        assert_eq!(refused.retry_after, None);
        let close = defaults
            .check(&state(0, 1000), at("2026-12-31T23:00:00Z"))
            .unwrap_err();
        assert_eq!(close.retry_after, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn an_override_replaces_the_default_per_field() {
        let defaults = QuotaDefaults {
            tokens_per_day: Some(10),
            tokens_per_month: Some(20),
        };
        let mut s = state(50, 50);
        s.quota.tokens_per_day = Some(1000);
        let refused = defaults.check(&s, at("2026-12-07T10:00:00Z")).unwrap_err();
        assert_eq!(refused.period, Period::Month);
        s.quota.tokens_per_month = Some(1000);
        assert!(defaults.check(&s, at("2026-12-07T10:00:00Z")).is_ok());
    }

    #[test]
    fn costs_are_per_million_tokens_with_cached_input_at_its_price() {
        let mut prices = PriceTable::default();
        prices.models.insert(
            "m".into(),
            Price {
                input: 2.0,
                cached_input: 0.5,
                output: 8.0,
            },
        );
        let tokens = TokenCounts {
            input: 1000,
            cached_input: 400,
            output: 100,
            reasoning: 0,
        };
        // 600 × 2 + 400 × 0.5 + 100 × 8 = 2200 micros.
        assert_eq!(prices.cost_micros("m", &tokens), Some(2200));
        assert_eq!(prices.cost_micros("other", &tokens), None);
    }

    fn request() -> LlmRequest {
        LlmRequest {
            model: "m".into(),
            instructions: Some("be brief".into()),
            messages: vec![LlmMessage {
                role: crate::model::Role::User,
                content: "hello there".into(),
            }],
            max_output_tokens: None,
            attachments: Vec::new(),
            sources: Vec::new(),
        }
    }

    struct Nothing;
    #[async_trait]
    impl UsageLedger for Nothing {
        async fn record(&self, _: &UsageEntry) -> Result<(), StoreError> {
            Ok(())
        }
        async fn quota_state(&self, _: &UserId, _: NaiveDate) -> Result<QuotaState, StoreError> {
            Ok(QuotaState::default())
        }
        async fn quota(&self, _: &UserId) -> Result<QuotaOverride, StoreError> {
            Ok(QuotaOverride::default())
        }
        async fn set_quota(&self, _: &UserId, _: &QuotaOverride) -> Result<(), StoreError> {
            Ok(())
        }
        async fn summary(
            &self,
            _: Option<&UserId>,
            _: NaiveDate,
            _: NaiveDate,
            _: GroupBy,
        ) -> Result<Vec<UsageRow>, StoreError> {
            Ok(Vec::new())
        }
        async fn users(&self, _: NaiveDate) -> Result<Vec<UserUsage>, StoreError> {
            Ok(Vec::new())
        }
    }

    struct Fixed;
    impl TokenCounter for Fixed {
        fn count(&self, model: &str, text: &str) -> Option<u64> {
            (model == "m").then_some(text.len() as u64)
        }
    }

    #[test]
    fn reported_usage_is_taken_as_is() {
        let accounting = Accounting::new(Arc::new(Nothing));
        let completion = Completion {
            usage: Some(Usage {
                input_tokens: 12,
                output_tokens: 5,
            }),
            cached_tokens: Some(3),
            reasoning_tokens: Some(2),
            ..Completion::default()
        };
        let (tokens, estimated) = accounting.tokens(&request(), "hi", Some(&completion));
        assert!(!estimated);
        assert_eq!(
            tokens,
            TokenCounts {
                input: 12,
                cached_input: 3,
                output: 5,
                reasoning: 2
            }
        );
    }

    #[test]
    fn without_usage_a_known_tokenizer_counts_else_it_is_estimated() {
        let mut accounting = Accounting::new(Arc::new(Nothing));
        let (tokens, estimated) = accounting.tokens(&request(), "abcdefgh", None);
        assert!(estimated);
        // "be brief\nhello there" is 20 characters: 5 tokens; "abcdefgh": 2.
        assert_eq!((tokens.input, tokens.output), (5, 2));
        accounting.tokenizer = Arc::new(Fixed);
        let (tokens, estimated) = accounting.tokens(&request(), "abcdefgh", None);
        assert!(!estimated);
        assert_eq!((tokens.input, tokens.output), (20, 8));
    }

    /// A ledger of one user's fixed sums and override, counting the sums it is asked for.
    struct Counting {
        state: QuotaState,
        sums: std::sync::atomic::AtomicUsize,
    }
    #[async_trait]
    impl UsageLedger for Counting {
        async fn record(&self, _: &UsageEntry) -> Result<(), StoreError> {
            Ok(())
        }
        async fn quota_state(&self, _: &UserId, _: NaiveDate) -> Result<QuotaState, StoreError> {
            self.sums.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.state)
        }
        async fn quota(&self, _: &UserId) -> Result<QuotaOverride, StoreError> {
            Ok(self.state.quota)
        }
        async fn set_quota(&self, _: &UserId, _: &QuotaOverride) -> Result<(), StoreError> {
            Ok(())
        }
        async fn summary(
            &self,
            _: Option<&UserId>,
            _: NaiveDate,
            _: NaiveDate,
            _: GroupBy,
        ) -> Result<Vec<UsageRow>, StoreError> {
            Ok(Vec::new())
        }
        async fn users(&self, _: NaiveDate) -> Result<Vec<UserUsage>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn counting(used: u64, quota: QuotaOverride) -> Arc<Counting> {
        Arc::new(Counting {
            state: QuotaState {
                used_day: used,
                used_month: used,
                quota,
            },
            sums: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    #[test]
    fn without_defaults_a_user_without_an_override_is_not_summed() {
        let ledger = counting(u64::MAX, QuotaOverride::default());
        let accounting = Accounting::new(Arc::clone(&ledger) as Arc<dyn UsageLedger>);
        let user = UserId::new("alice".to_owned()).unwrap();
        let checked =
            futures::executor::block_on(accounting.check(&user, at("2026-12-07T10:00:00Z")));
        assert!(matches!(checked, Ok(Ok(()))));
        assert_eq!(ledger.sums.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn without_defaults_an_override_alone_still_refuses() {
        let quota = QuotaOverride {
            tokens_per_day: Some(100),
            tokens_per_month: None,
        };
        let ledger = counting(100, quota);
        let accounting = Accounting::new(Arc::clone(&ledger) as Arc<dyn UsageLedger>);
        let user = UserId::new("alice".to_owned()).unwrap();
        let checked =
            futures::executor::block_on(accounting.check(&user, at("2026-12-07T10:00:00Z")));
        let refused = checked.unwrap().unwrap_err();
        assert_eq!((refused.period, refused.limit), (Period::Day, 100));
        assert_eq!(ledger.sums.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn with_defaults_every_user_is_summed() {
        let ledger = counting(5, QuotaOverride::default());
        let mut accounting = Accounting::new(Arc::clone(&ledger) as Arc<dyn UsageLedger>);
        accounting.defaults.tokens_per_month = Some(5);
        let user = UserId::new("alice".to_owned()).unwrap();
        let checked =
            futures::executor::block_on(accounting.check(&user, at("2026-12-07T10:00:00Z")));
        assert_eq!(checked.unwrap().unwrap_err().period, Period::Month);
        assert_eq!(ledger.sums.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}

//! `MemoryAccounts`: accounts, sessions and single-use links in one mutex-guarded state.
//! Each call takes the lock once, so each is atomic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use confab_core::accounts::{
    Account, AccountStore, EventRetention, Failures, FailuresStep, Link, LinkKind, Rotated,
    Rotation, SecurityEvent, Session,
};
use confab_core::error::{Conflict, StoreError};
use confab_core::model::Timestamp;
use uuid::Uuid;

/// The `AccountStore` in memory (for `DATABASE_URL=memory:` and tests).
#[derive(Clone, Default)]
pub struct MemoryAccounts {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    accounts: HashMap<Uuid, Account>,
    sessions: HashMap<Uuid, Session>,
    /// Session → (the hash its last rotation replaced, when, the current secret sealed under it).
    rotations: HashMap<Uuid, (String, Timestamp, String)>,
    /// By token hash, with whether it was used.
    links: HashMap<String, (Link, bool)>,
    /// The sign-in throttle's counts by key.
    failures: HashMap<String, Failures>,
    /// Signed-out browser sessions → when they would have expired.
    browser_revoked: HashMap<Uuid, Timestamp>,
    /// Security events of every account, in no order.
    events: Vec<SecurityEvent>,
}

impl MemoryAccounts {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every mutation checks first and writes last: a poisoned lock holds a whole state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl AccountStore for MemoryAccounts {
    async fn create_account(&self, account: &Account) -> Result<Account, StoreError> {
        let mut state = self.state();
        let taken = state.accounts.values().any(|other| {
            other.id == account.id
                || other.username == account.username
                || (account.email.is_some() && other.email == account.email)
        });
        if taken {
            return Err(Conflict::DuplicateId.into());
        }
        let stored = Account {
            is_admin: state.accounts.is_empty(),
            ..account.clone()
        };
        state.accounts.insert(stored.id, stored.clone());
        Ok(stored)
    }

    async fn create_first_account(&self, account: &Account) -> Result<Option<Account>, StoreError> {
        let mut state = self.state();
        if !state.accounts.is_empty() {
            return Ok(None);
        }
        let stored = Account {
            is_admin: true,
            ..account.clone()
        };
        state.accounts.insert(stored.id, stored.clone());
        Ok(Some(stored))
    }

    async fn count_accounts(&self) -> Result<u64, StoreError> {
        Ok(self.state().accounts.len() as u64)
    }

    async fn find_account(&self, login: &str) -> Result<Option<Account>, StoreError> {
        Ok(self
            .state()
            .accounts
            .values()
            .find(|a| a.username == login || a.email.as_deref() == Some(login))
            .cloned())
    }

    async fn get_account(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
        Ok(self.state().accounts.get(&id).cloned())
    }

    async fn set_password(&self, id: Uuid, hash: &str, now: Timestamp) -> Result<(), StoreError> {
        let mut state = self.state();
        let account = state.accounts.get_mut(&id).ok_or(StoreError::NotFound)?;
        hash.clone_into(&mut account.password_hash);
        revoke_all(&mut state, id, now);
        Ok(())
    }

    async fn delete_account(&self, id: Uuid) -> Result<(), StoreError> {
        let mut state = self.state();
        state.accounts.remove(&id).ok_or(StoreError::NotFound)?;
        state.sessions.retain(|_, s| s.account_id != id);
        state.links.retain(|_, (l, _)| l.account_id != Some(id));
        state.events.retain(|e| e.account_id != id);
        Ok(())
    }

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut state = self.state();
        if !state.accounts.contains_key(&session.account_id) {
            return Err(StoreError::NotFound);
        }
        if state.sessions.contains_key(&session.id) {
            return Err(Conflict::DuplicateId.into());
        }
        state.sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn get_session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        Ok(self.state().sessions.get(&id).cloned())
    }

    async fn revoke_session(&self, id: Uuid, now: Timestamp) -> Result<(), StoreError> {
        if let Some(session) = self.state().sessions.get_mut(&id) {
            session.revoked_at.get_or_insert(now);
        }
        Ok(())
    }

    async fn revoke_sessions(&self, account_id: Uuid, now: Timestamp) -> Result<(), StoreError> {
        revoke_all(&mut self.state(), account_id, now);
        Ok(())
    }

    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<Rotated, StoreError> {
        let mut state = self.state();
        let State {
            sessions,
            rotations,
            ..
        } = &mut *state;
        let Some(session) = sessions.get_mut(&rotation.session_id) else {
            return Ok(Rotated::Refused);
        };
        if session.revoked_at.is_some()
            || session.expires_at <= rotation.now
            || session.last_used_at < rotation.idle_since
        {
            return Ok(Rotated::Refused);
        }
        if !session.refresh_hash.is_empty() && session.refresh_hash == rotation.presented_hash {
            session.refresh_hash.clone_from(&rotation.new_hash);
            session.last_used_at = rotation.now;
            rotations.insert(
                session.id,
                (
                    rotation.presented_hash.clone(),
                    rotation.now,
                    rotation.sealed.clone(),
                ),
            );
            return Ok(Rotated::Rotated(session.clone()));
        }
        if let Some((previous, at, sealed)) = rotations.get(&session.id)
            && *previous == rotation.presented_hash
            && *at >= rotation.grace_since
        {
            return Ok(Rotated::Replayed {
                session: session.clone(),
                sealed: sealed.clone(),
            });
        }
        session.revoked_at.get_or_insert(rotation.now);
        Ok(Rotated::Reused)
    }

    async fn list_sessions(
        &self,
        account_id: Uuid,
        now: Timestamp,
        idle_since: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let mut live: Vec<Session> = self
            .state()
            .sessions
            .values()
            .filter(|s| {
                s.account_id == account_id
                    && s.revoked_at.is_none()
                    && s.expires_at > now
                    && s.last_used_at >= idle_since
            })
            .cloned()
            .collect();
        live.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(live)
    }

    async fn revoke_own_session(
        &self,
        account_id: Uuid,
        id: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        match self.state().sessions.get_mut(&id) {
            Some(s) if s.account_id == account_id && s.revoked_at.is_none() => {
                s.revoked_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_event(
        &self,
        event: &SecurityEvent,
        retention: EventRetention,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if !state.accounts.contains_key(&event.account_id) {
            return Err(StoreError::NotFound);
        }
        if state.events.iter().any(|e| e.id == event.id) {
            return Err(Conflict::DuplicateId.into());
        }
        state.events.push(event.clone());
        let mut own: Vec<(Timestamp, Uuid)> = state
            .events
            .iter()
            .filter(|e| e.account_id == event.account_id)
            .map(|e| (e.at, e.id))
            .collect();
        own.sort_unstable_by(|a, b| b.cmp(a));
        let keep = usize::try_from(retention.newest).unwrap_or(usize::MAX);
        let dropped: Vec<Uuid> = own
            .iter()
            .enumerate()
            .filter(|(i, (at, _))| *i >= keep || *at < retention.since)
            .map(|(_, (_, id))| *id)
            .collect();
        state.events.retain(|e| !dropped.contains(&e.id));
        Ok(())
    }

    async fn list_events(&self, account_id: Uuid) -> Result<Vec<SecurityEvent>, StoreError> {
        let mut own: Vec<SecurityEvent> = self
            .state()
            .events
            .iter()
            .filter(|e| e.account_id == account_id)
            .cloned()
            .collect();
        own.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
        Ok(own)
    }

    async fn mark_events_read(&self, account_id: Uuid, now: Timestamp) -> Result<u64, StoreError> {
        let mut marked = 0_u64;
        for event in &mut self.state().events {
            if event.account_id == account_id && event.read_at.is_none() && event.at <= now {
                event.read_at = Some(now);
                marked += 1;
            }
        }
        Ok(marked)
    }

    async fn insert_link(&self, link: &Link) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.links.contains_key(&link.token_hash) {
            return Err(Conflict::DuplicateId.into());
        }
        state
            .links
            .insert(link.token_hash.clone(), (link.clone(), false));
        Ok(())
    }

    async fn take_link(
        &self,
        kind: LinkKind,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Link>, StoreError> {
        let mut state = self.state();
        match state.links.get_mut(token_hash) {
            Some((link, used)) if link.kind == kind && !*used && now <= link.expires_at => {
                *used = true;
                Ok(Some(link.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn release_link(&self, kind: LinkKind, token_hash: &str) -> Result<(), StoreError> {
        if let Some((link, used)) = self.state().links.get_mut(token_hash)
            && link.kind == kind
        {
            *used = false;
        }
        Ok(())
    }

    async fn update_failures(
        &self,
        keys: &[String],
        _now: Timestamp,
        step: FailuresStep,
    ) -> Result<Vec<Option<Failures>>, StoreError> {
        let mut state = self.state();
        let before: Vec<Option<Failures>> = keys
            .iter()
            .map(|k| state.failures.get(k).copied())
            .collect();
        if let Some(after) = step(&before) {
            for (key, failures) in keys.iter().zip(after) {
                match failures {
                    Some(f) => state.failures.insert(key.clone(), f),
                    None => state.failures.remove(key),
                };
            }
        }
        Ok(before)
    }

    async fn forget_failures(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut state = self.state();
        let had = state.failures.len();
        state.failures.retain(|_, f| f.last >= before);
        Ok(u64::try_from(had - state.failures.len()).unwrap_or(u64::MAX))
    }

    async fn revoke_browser_session(
        &self,
        id: Uuid,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.browser_revoked.retain(|_, until| *until > now);
        state.browser_revoked.insert(id, expires_at);
        Ok(())
    }

    async fn browser_session_revoked(&self, id: Uuid, now: Timestamp) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .browser_revoked
            .get(&id)
            .is_some_and(|until| *until > now))
    }
}

fn revoke_all(state: &mut State, account_id: Uuid, now: Timestamp) {
    for session in state.sessions.values_mut() {
        if session.account_id == account_id {
            session.revoked_at.get_or_insert(now);
        }
    }
}

//! The cache of encoded pages of messages (issue 20): `GET /api/conversations/{id}/messages`
//! kept as the JSON bytes it answered, by (owner, conversation, `leaf`, `cursor`, `limit`),
//! with the conversation's revision read before the page (`ChatHistory::list_branch`).
//!
//! A cached page is served only after the conversation's current revision was read (one
//! indexed statement, which is also the ownership check: another owner's or a deleted
//! conversation is a 404, never a cached page) and found equal to the page's. The revision
//! changes in the same transaction as every write that can change a page (database triggers;
//! the memory store under its lock), so a replica never serves a page older than another
//! replica's write. A page read after its revision may be newer than it: that only costs a
//! miss. The same revision gives the page's weak `ETag`; `If-None-Match` is answered `304`
//! after the revision alone, cached or not.

use bytes::Bytes;
use confab_core::services::PageQuery;
use confab_core::{MessageId, UserId};
use uuid::Uuid;

/// What a cached page is found by. The owner is part of it: one user's page is never another's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageKey {
    owner: UserId,
    conversation: Uuid,
    leaf: Option<Uuid>,
    cursor: Option<String>,
    limit: u32,
}

impl PageKey {
    #[must_use]
    pub fn new(
        owner: &UserId,
        conversation: Uuid,
        leaf: Option<MessageId>,
        page: &PageQuery,
    ) -> Self {
        Self {
            owner: owner.clone(),
            conversation,
            leaf: leaf.map(|l| l.as_uuid()),
            cursor: page.cursor.clone(),
            limit: page.limit.get(),
        }
    }

    /// The weak validator of this page at `revision`: `W/"<revision>-<hash>"`, the hash (FNV-1a,
    /// the same on every replica) of the request's parameters and this build's version (a
    /// page's JSON may change with the server's version). Not the owner: another owner's
    /// request for the same URL is a 404 before any validator is compared.
    #[must_use]
    pub fn etag(&self, revision: i64) -> String {
        let mut hash = Fnv::new();
        hash.write(env!("CARGO_PKG_VERSION").as_bytes());
        hash.write(self.conversation.as_bytes());
        match self.leaf {
            Some(leaf) => {
                hash.write(&[1]);
                hash.write(leaf.as_bytes());
            }
            None => hash.write(&[0]),
        }
        match &self.cursor {
            Some(cursor) => {
                hash.write(&[1]);
                hash.write(&(cursor.len() as u64).to_le_bytes());
                hash.write(cursor.as_bytes());
            }
            None => hash.write(&[0]),
        }
        hash.write(&self.limit.to_le_bytes());
        format!("W/\"{revision}-{:016x}\"", hash.0)
    }

    /// The bytes this key holds in the cache (the strings it owns and its fixed part).
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.owner.as_str().len()
            + self.cursor.as_ref().map_or(0, String::len)
    }
}

/// A page as it was answered.
#[derive(Clone, Debug)]
pub struct CachedPage {
    /// The conversation's revision read before the page.
    pub revision: i64,
    /// The JSON body.
    pub body: Bytes,
}

#[derive(Clone, Copy)]
struct ByBytes;

impl quick_cache::Weighter<PageKey, CachedPage> for ByBytes {
    fn weight(&self, key: &PageKey, page: &CachedPage) -> u64 {
        // Every entry weighs at least its fixed parts, so none is free.
        (key.weight() + std::mem::size_of::<CachedPage>() + page.body.len()) as u64
    }
}

const SHARDS: usize = 8;

/// The bounded cache (`CONFAB_PAGE_CACHE_MB`), shared by the workers.
pub struct PageCache {
    pages: quick_cache::sync::Cache<PageKey, CachedPage, ByBytes>,
}

impl PageCache {
    /// A cache of at most `megabytes` MiB of pages and keys; `None` for 0 (no cache).
    #[must_use]
    pub fn new(megabytes: u64) -> Option<Self> {
        if megabytes == 0 {
            return None;
        }
        let bytes = megabytes.saturating_mul(1024 * 1024);
        // A page of 50 is ~30 KB; the estimate only sizes the tables.
        let items = usize::try_from(bytes / 16_384)
            .unwrap_or(usize::MAX)
            .max(16);
        // A fixed number of shards (each a lock and an equal share of the bytes): the
        // default grows with the cores, and a page heavier than its shard is not kept.
        let pages = match quick_cache::OptionsBuilder::new()
            .estimated_items_capacity(items)
            .weight_capacity(bytes)
            .shards(SHARDS)
            .build()
        {
            Ok(options) => quick_cache::sync::Cache::with_options(
                options,
                ByBytes,
                quick_cache::DefaultHashBuilder::default(),
                quick_cache::sync::DefaultLifecycle::default(),
            ),
            Err(_) => quick_cache::sync::Cache::with_weighter(items, bytes, ByBytes),
        };
        Some(Self { pages })
    }

    #[must_use]
    pub fn get(&self, key: &PageKey) -> Option<CachedPage> {
        self.pages.get(key)
    }

    pub fn insert(&self, key: PageKey, page: CachedPage) {
        self.pages.insert(key, page);
    }

    pub fn remove(&self, key: &PageKey) {
        self.pages.remove(key);
    }
}

/// Whether `If-None-Match` (its header value) names `etag`, compared weakly (RFC 9110
/// 13.1.2: `W/` ignored), or is `*`.
#[must_use]
pub fn none_match(header: &str, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(etag);
    header
        .split(',')
        .any(|tag| tag.trim() == "*" || opaque(tag) == ours)
}

/// FNV-1a, 64 bits: stable across processes and builds (unlike `std`'s `RandomState`).
struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use confab_core::services::PageQuery;
    use confab_core::values::PageLimit;

    use super::*;

    fn key(leaf: Option<MessageId>, cursor: Option<&str>, limit: i64) -> PageKey {
        let page = PageQuery {
            limit: PageLimit::new(Some(limit)).expect("a valid limit"),
            cursor: cursor.map(str::to_owned),
        };
        let owner = UserId::new("ann").expect("a valid user id");
        PageKey::new(&owner, Uuid::nil(), leaf, &page)
    }

    #[test]
    fn the_etag_names_the_revision_and_each_parameter() {
        let plain = key(None, None, 50);
        assert_eq!(plain.etag(7), key(None, None, 50).etag(7), "stable");
        assert!(plain.etag(7).starts_with("W/\"7-"), "{}", plain.etag(7));
        assert_ne!(plain.etag(7), plain.etag(8));
        let leaf = MessageId::from_uuid(Uuid::from_u128(1));
        for other in [
            key(Some(leaf), None, 50),
            key(None, Some("c"), 50),
            key(None, None, 49),
        ] {
            assert_ne!(plain.etag(7), other.etag(7), "{other:?}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_a_star() {
        let tag = "W/\"3-00ff\"";
        assert!(none_match(tag, tag));
        assert!(none_match("\"3-00ff\"", tag));
        assert!(none_match("\"x\", W/\"3-00ff\"", tag));
        assert!(none_match("*", tag));
        assert!(!none_match("W/\"4-00ff\"", tag));
        assert!(!none_match("", tag));
    }

    #[test]
    fn a_cache_of_zero_is_none_and_pages_are_bounded_by_bytes() {
        assert!(PageCache::new(0).is_none());
        let cache = PageCache::new(1).expect("a cache");
        let body = Bytes::from(vec![b'x'; 100_000]);
        for limit in 1..=40 {
            cache.insert(
                key(None, None, limit),
                CachedPage {
                    revision: 1,
                    body: body.clone(),
                },
            );
        }
        let kept = (1..=40)
            .filter(|&l| cache.get(&key(None, None, l)).is_some())
            .count();
        assert!((1..=10).contains(&kept), "{kept} pages of 100 KB in 1 MiB");
    }
}

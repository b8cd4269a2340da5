//! Domain records → API bodies.

use confab_api_types as api;
use confab_core as core;

pub fn project(p: core::Project) -> api::Project {
    api::Project {
        id: p.id.as_uuid(),
        name: p.name,
        description: p.description,
        created_at: p.created_at,
        updated_at: p.updated_at,
        knowledge: p.knowledge,
        language: p.language.as_str().to_owned(),
    }
}

pub fn prompt(p: core::Prompt) -> api::Prompt {
    api::Prompt {
        id: p.id.as_uuid(),
        project_id: p.project_id.as_uuid(),
        version: p.version,
        content: p.content,
        is_active: p.is_active,
        created_at: p.created_at,
    }
}

pub fn conversation(c: core::Conversation) -> api::Conversation {
    api::Conversation {
        id: c.id.as_uuid(),
        project_id: c.project_id.as_uuid(),
        title: c.title,
        created_at: c.created_at,
        updated_at: c.updated_at,
        active_reply_id: c.active_reply_id.map(|id| id.as_uuid()),
        leaf_id: c.leaf_id.map(|id| id.as_uuid()),
        model: c.model,
    }
}

pub fn role(r: core::Role) -> api::Role {
    match r {
        core::Role::User => api::Role::User,
        core::Role::Assistant => api::Role::Assistant,
    }
}

pub fn search_result(hit: confab_core::search::SearchHit) -> api::SearchResult {
    api::SearchResult {
        conversation_id: hit.conversation_id.as_uuid(),
        project_id: hit.project_id.as_uuid(),
        conversation_title: hit.conversation_title,
        message_id: hit.message_id.map(|id| id.as_uuid()),
        role: hit.role.map(role),
        created_at: hit.created_at,
        snippet: hit.snippet,
    }
}

pub fn message(m: core::Message) -> api::Message {
    api::Message {
        id: m.id.as_uuid(),
        conversation_id: m.conversation_id.as_uuid(),
        parent_id: m.parent_id.map(|id| id.as_uuid()),
        sibling_ids: None,
        role: match m.role {
            core::Role::User => api::Role::User,
            core::Role::Assistant => api::Role::Assistant,
        },
        content: m.content,
        status: match m.status {
            core::MessageStatus::Complete => api::MessageStatus::Complete,
            core::MessageStatus::Streaming => api::MessageStatus::Streaming,
            core::MessageStatus::Failed => api::MessageStatus::Failed,
            core::MessageStatus::Cancelled => api::MessageStatus::Cancelled,
        },
        model: m.model,
        usage: m.usage.map(|u| api::Usage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
        }),
        error: m.error,
        created_at: m.created_at,
        files: m
            .files
            .into_iter()
            .map(|f| api::MessageFile {
                id: f.id.as_uuid(),
                filename: f.filename,
                content_type: f.content_type,
                size_bytes: f.size_bytes,
                deleted: f.deleted,
            })
            .collect(),
        sources: m.sources.into_iter().map(source).collect(),
    }
}

pub fn source(s: confab_core::knowledge::Source) -> api::Source {
    api::Source {
        n: s.n,
        file_id: s.file_id.as_uuid(),
        filename: s.filename,
        excerpt: s.excerpt,
    }
}

/// A message of a branch read, with its versions.
pub fn branch_message(m: core::BranchMessage) -> api::Message {
    api::Message {
        sibling_ids: Some(m.sibling_ids.iter().map(|id| id.as_uuid()).collect()),
        ..message(m.message)
    }
}

pub fn file(f: core::FileMeta) -> api::FileInfo {
    api::FileInfo {
        id: f.id.as_uuid(),
        project_id: f.project_id.as_uuid(),
        filename: f.filename,
        content_type: f.content_type,
        size_bytes: f.size_bytes,
        sha256: f.sha256,
        created_at: f.created_at,
        text_status: match f.text_status {
            core::TextStatus::Pending => api::TextStatus::Pending,
            core::TextStatus::Ready => api::TextStatus::Ready,
            core::TextStatus::Failed => api::TextStatus::Failed,
            core::TextStatus::None => api::TextStatus::None,
        },
        text_error: f.text_error,
    }
}

pub fn page<T, U>(page: core::Page<T>, map: impl FnMut(T) -> U) -> api::Page<U> {
    api::Page {
        items: page.items.into_iter().map(map).collect(),
        next_cursor: page.next_cursor,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_published_knowledge_languages_are_the_ones_the_core_accepts() {
        assert_eq!(
            confab_api_types::KNOWLEDGE_LANGUAGES,
            confab_core::values::SEARCH_LANGUAGES
        );
    }
}

//! Building blocks of the pages.

pub mod activity;
pub mod attached_files;
pub mod composer;
pub mod files;
pub mod message_list;
pub mod nav_link;
pub mod password;
pub mod prompt_editor;
pub mod search;
pub mod sessions;
pub mod shares;
pub mod sidebar;
pub mod transfer;

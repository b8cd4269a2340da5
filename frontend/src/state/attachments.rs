//! The composer's attachments: one chip per file, from the moment it is picked (dropped,
//! pasted) through its upload to the send that takes it along.
//!
//! [`Attachments`] is a Yew [`Reducible`] driven by [`ChipAction`]s, so the rules (at most
//! [`MAX_FILES`], Send waits for every upload, a removed chip stays removed even when its
//! upload finishes later) are tested without a browser.

use std::rc::Rc;

use confab_api_types::{FileInfo, MessageFile};
use yew::Reducible;

/// At most this many files go with one message (the server refuses more with 422).
pub const MAX_FILES: usize = 10;

/// Where one attachment stands.
#[derive(Clone, Debug, PartialEq)]
pub enum ChipState {
    /// Being uploaded: bytes sent of the total.
    Uploading { sent: f64, total: f64 },
    /// Uploaded: it goes with the next send.
    Ready(MessageFile),
    /// Not uploaded, with the reason (a sentence for a person); it does not go with a send.
    Failed(String),
}

/// One attachment shown in the composer.
#[derive(Clone, Debug, PartialEq)]
pub struct Chip {
    /// This page's own number for the chip (uploads report to it).
    pub key: u32,
    pub name: String,
    pub state: ChipState,
}

/// The composer's chips, in the order the files were picked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attachments {
    pub chips: Vec<Chip>,
}

/// Everything that changes the chips.
#[derive(Clone, Debug, PartialEq)]
pub enum ChipAction {
    /// A file was picked and its upload starts.
    Started { key: u32, name: String, total: f64 },
    /// A file that cannot be uploaded (empty, too large, one too many): shown with the reason.
    Refused {
        key: u32,
        name: String,
        reason: String,
    },
    /// Upload progress.
    Progress { key: u32, sent: f64, total: f64 },
    /// The upload is done.
    Uploaded { key: u32, file: FileInfo },
    /// The upload failed; `reason` says why.
    Failed { key: u32, reason: String },
    /// "Remove <filename>".
    Remove { key: u32 },
    /// The message was sent with the ready files: the box is empty again.
    Clear,
    /// A refused send's files come back (after any picked since, none twice); `first_key`
    /// numbers them.
    Restore {
        first_key: u32,
        files: Vec<MessageFile>,
    },
}

/// What a message carries of an uploaded file.
pub fn message_file(file: &FileInfo) -> MessageFile {
    MessageFile {
        id: file.id,
        filename: file.filename.clone(),
        content_type: file.content_type.clone(),
        size_bytes: file.size_bytes,
        deleted: false,
    }
}

impl Attachments {
    /// Some upload is still running: Send waits.
    pub fn uploading(&self) -> bool {
        self.chips
            .iter()
            .any(|c| matches!(c.state, ChipState::Uploading { .. }))
    }

    /// The uploaded files, in order: what the next send takes along.
    pub fn ready(&self) -> Vec<MessageFile> {
        self.chips
            .iter()
            .filter_map(|c| match &c.state {
                ChipState::Ready(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many more files can be picked for this message (failed chips do not count).
    pub fn room(&self) -> usize {
        let taken = self
            .chips
            .iter()
            .filter(|c| !matches!(c.state, ChipState::Failed(_)))
            .count();
        MAX_FILES.saturating_sub(taken)
    }

    /// Whether the chip `key` is still shown (a removed chip's late upload is not wanted).
    pub fn has(&self, key: u32) -> bool {
        self.chips.iter().any(|c| c.key == key)
    }

    fn chip_mut(&mut self, key: u32) -> Option<&mut Chip> {
        self.chips.iter_mut().find(|c| c.key == key)
    }
}

impl Reducible for Attachments {
    type Action = ChipAction;

    fn reduce(self: Rc<Self>, action: ChipAction) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            ChipAction::Started { key, name, total } => next.chips.push(Chip {
                key,
                name,
                state: ChipState::Uploading { sent: 0.0, total },
            }),
            ChipAction::Refused { key, name, reason } => next.chips.push(Chip {
                key,
                name,
                state: ChipState::Failed(reason),
            }),
            ChipAction::Progress { key, sent, total } => match next.chip_mut(key) {
                Some(chip) if matches!(chip.state, ChipState::Uploading { .. }) => {
                    chip.state = ChipState::Uploading { sent, total };
                }
                _ => return self,
            },
            ChipAction::Uploaded { key, file } => match next.chip_mut(key) {
                Some(chip) => {
                    chip.name = file.filename.clone();
                    chip.state = ChipState::Ready(message_file(&file));
                }
                None => return self,
            },
            ChipAction::Failed { key, reason } => match next.chip_mut(key) {
                Some(chip) => chip.state = ChipState::Failed(reason),
                None => return self,
            },
            ChipAction::Remove { key } => next.chips.retain(|c| c.key != key),
            ChipAction::Clear => next.chips.clear(),
            ChipAction::Restore { first_key, files } => {
                // The refused send's files come first, in their order.
                let mut restored: Vec<Chip> = Vec::new();
                for file in files {
                    let known = next
                        .chips
                        .iter()
                        .chain(&restored)
                        .any(|c| matches!(&c.state, ChipState::Ready(f) if f.id == file.id));
                    if !known {
                        let key = first_key.wrapping_add(restored.len() as u32);
                        restored.push(Chip {
                            key,
                            name: file.filename.clone(),
                            state: ChipState::Ready(file),
                        });
                    }
                }
                restored.append(&mut next.chips);
                next.chips = restored;
            }
        }
        Rc::new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn info(id: u128, name: &str) -> FileInfo {
        serde_json::from_value(serde_json::json!({
            "id": Uuid::from_u128(id),
            "project_id": Uuid::from_u128(7),
            "filename": name,
            "content_type": "application/pdf",
            "size_bytes": 1234,
            "sha256": "00",
            "created_at": "2026-01-01T00:00:00Z",
            "text_status": "pending",
        }))
        .unwrap()
    }

    fn reduce_all(actions: impl IntoIterator<Item = ChipAction>) -> Rc<Attachments> {
        actions
            .into_iter()
            .fold(Rc::new(Attachments::default()), |s, a| s.reduce(a))
    }

    fn started(key: u32, name: &str) -> ChipAction {
        ChipAction::Started {
            key,
            name: name.into(),
            total: 1234.0,
        }
    }

    #[test]
    fn send_waits_for_every_upload_and_takes_the_ready_files_in_order() {
        let s = reduce_all([started(1, "a.pdf"), started(2, "b.txt")]);
        assert!(s.uploading());
        assert!(s.ready().is_empty());
        let s = s.reduce(ChipAction::Progress {
            key: 2,
            sent: 600.0,
            total: 1234.0,
        });
        assert_eq!(
            s.chips[1].state,
            ChipState::Uploading {
                sent: 600.0,
                total: 1234.0
            }
        );
        let s = s.reduce(ChipAction::Uploaded {
            key: 2,
            file: info(2, "b.txt"),
        });
        assert!(s.uploading(), "a.pdf is still on its way");
        let s = s.reduce(ChipAction::Uploaded {
            key: 1,
            file: info(1, "a.pdf"),
        });
        assert!(!s.uploading());
        let names: Vec<_> = s.ready().into_iter().map(|f| f.filename).collect();
        assert_eq!(names, ["a.pdf", "b.txt"]);
        assert!(s.reduce(ChipAction::Clear).chips.is_empty());
    }

    #[test]
    fn a_failed_upload_shows_why_and_goes_with_no_send() {
        let s = reduce_all([
            started(1, "big.bin"),
            ChipAction::Failed {
                key: 1,
                reason: "The file is larger than the limit.".into(),
            },
        ]);
        assert!(!s.uploading());
        assert!(s.ready().is_empty());
        assert_eq!(
            s.chips[0].state,
            ChipState::Failed("The file is larger than the limit.".into())
        );
        assert_eq!(s.room(), MAX_FILES, "a failed chip takes no place");
    }

    #[test]
    fn a_chip_removed_while_uploading_stays_removed() {
        let s = reduce_all([
            started(1, "a.pdf"),
            started(2, "b.pdf"),
            ChipAction::Remove { key: 1 },
        ]);
        assert!(!s.has(1));
        let after = s.clone().reduce(ChipAction::Uploaded {
            key: 1,
            file: info(1, "a.pdf"),
        });
        assert_eq!(after, s, "a late upload brings no chip back");
        let after = s.clone().reduce(ChipAction::Progress {
            key: 1,
            sent: 1.0,
            total: 2.0,
        });
        assert_eq!(after, s);
        assert_eq!(s.chips.len(), 1);
        assert_eq!(s.chips[0].name, "b.pdf");
    }

    #[test]
    fn at_most_ten_files_have_room() {
        let s = reduce_all((0..9).map(|k| started(k, "f")));
        assert_eq!(s.room(), 1);
        let s = s.reduce(started(9, "g"));
        assert_eq!(s.room(), 0);
    }

    #[test]
    fn a_refused_sends_files_come_back_first_and_none_twice() {
        let s = reduce_all([
            started(1, "new.txt"),
            ChipAction::Uploaded {
                key: 1,
                file: info(3, "new.txt"),
            },
        ]);
        let back = vec![
            message_file(&info(1, "a.pdf")),
            message_file(&info(2, "b.pdf")),
            message_file(&info(3, "new.txt")),
        ];
        let s = s.reduce(ChipAction::Restore {
            first_key: 100,
            files: back,
        });
        let names: Vec<_> = s.ready().into_iter().map(|f| f.filename).collect();
        assert_eq!(names, ["a.pdf", "b.pdf", "new.txt"]);
        let keys: Vec<_> = s.chips.iter().map(|c| c.key).collect();
        assert_eq!(keys, [100, 101, 1]);
    }
}

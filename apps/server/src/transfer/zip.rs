//! A zip archive written as a stream, front to back, never seeking: each entry's CRC and
//! sizes follow its data in a data descriptor (general purpose flag bit 3), and the central
//! directory comes last. So `GET /api/export` sends the archive as it is made, holding one
//! buffer at a time whatever the account's size.
//!
//! Entries are stored or deflated; names are UTF-8 (flag bit 11). No ZIP64: an entry or the
//! archive over 4 GiB, or more than 65,535 entries, fails the stream.

use std::io::{self, Write as _};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use tokio::sync::mpsc;

/// Bytes are sent to the client in pieces of about this size.
const CHUNK: usize = 64 * 1024;

const STORED: u16 = 0;
const DEFLATED: u16 = 8;
/// Bit 3: sizes and CRC in a data descriptor after the data; bit 11: the name is UTF-8.
const FLAGS: u16 = 0x0808;
const VERSION: u16 = 20;

/// Where the archive's bytes go: the response body's channel.
pub type Sink = mpsc::Sender<Result<Bytes, io::Error>>;

struct Entry {
    name: String,
    method: u16,
    crc: u32,
    compressed: u32,
    size: u32,
    offset: u32,
}

struct Current {
    name: String,
    method: u16,
    crc: flate2::Crc,
    size: u64,
    compressed: u64,
    offset: u64,
    encoder: Option<DeflateEncoder<Vec<u8>>>,
}

/// A zip archive being written to a [`Sink`].
pub struct ZipStream {
    sink: Sink,
    offset: u64,
    pending: Vec<u8>,
    entries: Vec<Entry>,
    current: Option<Current>,
    time: u16,
    date: u16,
}

fn too_large(what: &str) -> io::Error {
    io::Error::other(format!("{what} is too large for a zip without ZIP64"))
}

fn u32_of(n: u64, what: &str) -> io::Result<u32> {
    u32::try_from(n).map_err(|_| too_large(what))
}

/// MS-DOS time and date of `at` (two-second resolution, years 1980–2107).
fn dos_time(at: chrono::DateTime<chrono::Utc>) -> (u16, u16) {
    use chrono::{Datelike as _, Timelike as _};
    let year = u16::try_from(at.year().clamp(1980, 2107) - 1980).unwrap_or(0);
    let time = (u16::try_from(at.hour()).unwrap_or(0) << 11)
        | (u16::try_from(at.minute()).unwrap_or(0) << 5)
        | u16::try_from(at.second() / 2).unwrap_or(0);
    let date = (year << 9)
        | (u16::try_from(at.month()).unwrap_or(1) << 5)
        | u16::try_from(at.day()).unwrap_or(1);
    (time, date)
}

impl ZipStream {
    #[must_use]
    pub fn new(sink: Sink, now: chrono::DateTime<chrono::Utc>) -> Self {
        let (time, date) = dos_time(now);
        Self {
            sink,
            offset: 0,
            pending: Vec::with_capacity(CHUNK),
            entries: Vec::new(),
            current: None,
            time,
            date,
        }
    }

    /// Queues archive bytes, sending a piece when enough are queued.
    async fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(bytes);
        self.offset += bytes.len() as u64;
        if self.pending.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(
            &mut self.pending,
            Vec::with_capacity(CHUNK),
        ));
        self.sink
            .send(Ok(piece))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Starts an entry named `name` (ending the one before, if any).
    pub async fn start(&mut self, name: &str, deflate: bool) -> io::Result<()> {
        self.end_entry().await?;
        if name.len() > usize::from(u16::MAX) {
            return Err(too_large("an entry's name"));
        }
        let method = if deflate { DEFLATED } else { STORED };
        let offset = self.offset;
        let mut header = Vec::with_capacity(30 + name.len());
        header.extend_from_slice(&0x0403_4b50_u32.to_le_bytes());
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&FLAGS.to_le_bytes());
        header.extend_from_slice(&method.to_le_bytes());
        header.extend_from_slice(&self.time.to_le_bytes());
        header.extend_from_slice(&self.date.to_le_bytes());
        header.extend_from_slice(&[0; 12]); // CRC and sizes: in the data descriptor
        header.extend_from_slice(&u16::try_from(name.len()).unwrap_or(0).to_le_bytes());
        header.extend_from_slice(&0_u16.to_le_bytes());
        header.extend_from_slice(name.as_bytes());
        self.emit(&header).await?;
        self.current = Some(Current {
            name: name.to_owned(),
            method,
            crc: flate2::Crc::new(),
            size: 0,
            compressed: 0,
            offset,
            encoder: deflate.then(|| DeflateEncoder::new(Vec::new(), Compression::default())),
        });
        Ok(())
    }

    /// Appends to the current entry.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(current) = self.current.as_mut() else {
            return Err(io::Error::other("no zip entry is open"));
        };
        current.crc.update(data);
        current.size += data.len() as u64;
        let out = match current.encoder.as_mut() {
            Some(encoder) => {
                encoder.write_all(data)?;
                std::mem::take(encoder.get_mut())
            }
            None => data.to_vec(),
        };
        current.compressed += out.len() as u64;
        self.emit(&out).await
    }

    /// Ends the current entry with its data descriptor.
    async fn end_entry(&mut self) -> io::Result<()> {
        let Some(mut current) = self.current.take() else {
            return Ok(());
        };
        if let Some(encoder) = current.encoder.take() {
            let rest = encoder.finish()?;
            current.compressed += rest.len() as u64;
            self.emit(&rest).await?;
        }
        let entry = Entry {
            name: current.name,
            method: current.method,
            crc: current.crc.sum(),
            compressed: u32_of(current.compressed, "an entry")?,
            size: u32_of(current.size, "an entry")?,
            offset: u32_of(current.offset, "the archive")?,
        };
        let mut descriptor = Vec::with_capacity(16);
        descriptor.extend_from_slice(&0x0807_4b50_u32.to_le_bytes());
        descriptor.extend_from_slice(&entry.crc.to_le_bytes());
        descriptor.extend_from_slice(&entry.compressed.to_le_bytes());
        descriptor.extend_from_slice(&entry.size.to_le_bytes());
        self.emit(&descriptor).await?;
        self.entries.push(entry);
        Ok(())
    }

    /// Ends the last entry, writes the central directory and sends what is left.
    pub async fn finish(mut self) -> io::Result<()> {
        self.end_entry().await?;
        let count = u16::try_from(self.entries.len()).map_err(|_| too_large("the entry count"))?;
        let start = self.offset;
        let entries = std::mem::take(&mut self.entries);
        for entry in &entries {
            let mut header = Vec::with_capacity(46 + entry.name.len());
            header.extend_from_slice(&0x0201_4b50_u32.to_le_bytes());
            header.extend_from_slice(&(0x0300 | VERSION).to_le_bytes()); // made by: Unix
            header.extend_from_slice(&VERSION.to_le_bytes());
            header.extend_from_slice(&FLAGS.to_le_bytes());
            header.extend_from_slice(&entry.method.to_le_bytes());
            header.extend_from_slice(&self.time.to_le_bytes());
            header.extend_from_slice(&self.date.to_le_bytes());
            header.extend_from_slice(&entry.crc.to_le_bytes());
            header.extend_from_slice(&entry.compressed.to_le_bytes());
            header.extend_from_slice(&entry.size.to_le_bytes());
            header.extend_from_slice(&u16::try_from(entry.name.len()).unwrap_or(0).to_le_bytes());
            header.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
            header.extend_from_slice(&(0o100_644_u32 << 16).to_le_bytes()); // -rw-r--r--
            header.extend_from_slice(&entry.offset.to_le_bytes());
            header.extend_from_slice(entry.name.as_bytes());
            self.emit(&header).await?;
        }
        let size = u32_of(self.offset - start, "the central directory")?;
        let start = u32_of(start, "the archive")?;
        let mut end = Vec::with_capacity(22);
        end.extend_from_slice(&0x0605_4b50_u32.to_le_bytes());
        end.extend_from_slice(&[0; 4]); // this disk, the directory's disk
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&size.to_le_bytes());
        end.extend_from_slice(&start.to_le_bytes());
        end.extend_from_slice(&0_u16.to_le_bytes());
        self.emit(&end).await?;
        self.flush().await
    }
}

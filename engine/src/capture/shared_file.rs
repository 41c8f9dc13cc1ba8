//! A capture file read once for several workers.
//!
//! A replay with several workers splits the connections between them by
//! [`shard_of`]. The file is read in blocks of 256 KiB, each by a worker: it reads
//! the block (outside the lock), sorts its whole records by worker while their bytes are
//! fresh in its cache, and publishes it to all. Each worker then walks only its own
//! records of each block. So the file is copied out of the page cache once, not once per
//! worker, and a worker never touches another worker's frames. No thread of its own:
//! reading a block costs far less than processing it.
//!
//! **One block ahead.** The first worker to take block `n` also reads block `n + 1`
//! before it walks `n`. Reading a block takes some 50–200 µs; had the next block been read
//! only when first needed, workers running neck and neck (the usual case: the shards are
//! even) would meet there on most blocks, one reading while the other waits for it, and
//! the reading of the whole file would be serial. Read one ahead, it is ready before
//! anyone needs it, and the workers take turns reading (S-100mb, 2 workers, blocks of
//! 256 KiB: 150–225 waits of ~50 µs per run became 0–6).
//!
//! **Blocks of 256 KiB, up to 32 apart.** The workers are even on average but not at every
//! moment: one is preempted, faults a page, meets a run of larger messages. The other may
//! then go on for as many blocks as are held, and waits after that. So what matters for
//! the waits is the bytes held: with 4 MiB (some 7 ms of a worker's work) they came often
//! enough on this shared 2-CPU host that two workers gained a median 1.41× over one
//! (S-100mb, 20 interleaved rounds); with 8 MiB, 1.74× (16 MiB: 1.68×, no better). Within
//! those 8 MiB, smaller blocks cost less CPU: a block is read into one of the buffers kept
//! (below), and a smaller one is more likely still in a cache when it is read into and
//! walked. 256 KiB × 32 against 1 MiB × 8, S-100mb, 2 workers, 16–20 interleaved rounds in
//! three stretches of the host: CPU 337.5 → 308.6, 310.3 → 305.1 and (a CPU hog running
//! 40 % of the time) 323.2 → 315.6 ms; one worker ÷ two 1.68 → 1.86×, 1.82 → 1.86×,
//! 1.55 → 1.61×. 64 KiB × 128 and 128 KiB × 64 were no better, 512 KiB × 16 about the
//! same; workloads H, A and M 1–5 % faster, three workers 1 %. (256 KiB × 8, a 2 MiB
//! window, had been 5 % slower than 1 MiB × 4: the window, not the block, was too small.)
//!
//! Invariants:
//! - **Every record goes to exactly one worker**, the one `shard_of` names, and each
//!   worker sees its records in file order.
//! - **The records are exactly those [`CaptureFile`] returns**, and the reading ends the
//!   same way. Blocks are cut by the fast reader's rules (`PcapFormat`); at the first
//!   record it would hand over (a damaged or unusual record, a file cut short), every
//!   worker reads on from that record with a libpcap handle of its own, keeping its own
//!   shard, so damage is found, counted and worded as for one worker. A file the fast
//!   reader does not take at all (pcapng, …) is read that way from the start.
//! - **Memory is bounded**: at most [`MAX_BLOCKS`] blocks are held for the workers. A
//!   worker that far ahead of the slowest waits for it, in slices (its poll comes back
//!   empty, so it still sees `stop`). A worker that ends, or panics, holds nothing back.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::file::{CaptureFile, PcapFormat, Record, SourceError, RECORD_HEADER};
use super::LinkType;
use crate::shard::shard_of;
use crate::time::Timestamp;

/// The bytes read into one block (a block also takes the tail of a record the block
/// before it cut, and grows for a record longer than this).
const BLOCK_BYTES: usize = 256 << 10;
/// The most blocks held for the workers: how far (in blocks) the fastest worker may be
/// ahead of the slowest (see the module docs). With as many kept to read into, some
/// 16 MiB, and more only for records longer than a block.
pub const MAX_BLOCKS: usize = 32;
/// The longest a worker spins, rather than sleeps, while another reads the block it
/// needs: longer than a block's reading (see the module docs).
const SPIN_LIMIT: Duration = Duration::from_millis(1);

/// One capture file, read once for `shards` workers; each takes its records through its
/// own [`SharedFileReader`].
pub struct SharedFile {
    path: String,
    link: LinkType,
    shards: usize,
    feed: Mutex<Feed>,
    /// Signalled when a block is published, and when a worker moves on or leaves.
    moved: Condvar,
    /// A worker is reading the next block (outside the lock).
    reading: AtomicBool,
}

/// The blocks the workers are reading, and the reader of the next one.
struct Feed {
    /// Blocks some worker has yet to take; `blocks[0]` is block number `first`.
    blocks: VecDeque<Arc<Block>>,
    first: u64,
    /// Reads the next block. `None` while a worker is reading it (outside the lock), and
    /// for good once the last block is published.
    reader: Option<BlockReader>,
    /// The last block (the one with an [`End`]) is published.
    ended: bool,
    /// The next block each worker will take; `u64::MAX` once it has left.
    next: Vec<u64>,
    /// Blocks no worker holds any more, kept to read the next ones into (at most
    /// [`MAX_BLOCKS`]): the blocks' memory is allocated once, not once per block.
    spare: Vec<Block>,
}

/// A run of whole records, sorted by worker.
struct Block {
    data: Vec<u8>,
    /// Each worker's records (where in `data`, and when), in file order.
    own: Vec<Vec<Rec>>,
    /// `Some` on the last block: how the fast reading ends after it.
    end: Option<End>,
}

/// One record of a block.
#[derive(Clone, Copy)]
struct Rec {
    at: u32,
    len: u32,
    ts: Timestamp,
}

/// How the reading in blocks ends.
#[derive(Clone, Copy, Debug)]
enum End {
    /// The file ends exactly after the last record.
    File,
    /// At the record after the first `records`: libpcap reads on from there.
    HandOver { records: u64 },
}

impl SharedFile {
    /// Opens a pcap or pcapng file for `shards` workers. Fails as [`CaptureFile::open`]
    /// does, with the same words.
    pub fn open(path: &str, shards: usize) -> Result<Arc<SharedFile>, SourceError> {
        Self::open_with_blocks(path, shards, BLOCK_BYTES)
    }

    /// [`SharedFile::open`] with blocks of about `block_bytes` (tests use tiny ones).
    #[doc(hidden)]
    pub fn open_with_blocks(
        path: &str,
        shards: usize,
        block_bytes: usize,
    ) -> Result<Arc<SharedFile>, SourceError> {
        let shards = shards.max(1);
        let link = CaptureFile::open_with_libpcap(path)?.link();
        // Any trouble here leaves the whole file to libpcap, which could open it.
        let reader = std::fs::File::open(path).ok().and_then(|mut file| {
            let format = PcapFormat::read(&mut file)?;
            Some(BlockReader {
                file,
                format,
                link,
                shards,
                block_bytes: block_bytes.max(1),
                carry: Vec::new(),
                records: 0,
                eof: false,
            })
        });
        let mut blocks = VecDeque::new();
        let ended = reader.is_none();
        if ended {
            blocks.push_back(Arc::new(Block {
                data: Vec::new(),
                own: vec![Vec::new(); shards],
                end: Some(End::HandOver { records: 0 }),
            }));
        }
        Ok(Arc::new(SharedFile {
            path: path.to_string(),
            link,
            shards,
            feed: Mutex::new(Feed {
                blocks,
                first: 0,
                reader,
                ended,
                next: vec![0; shards],
                spare: Vec::new(),
            }),
            moved: Condvar::new(),
            reading: AtomicBool::new(false),
        }))
    }

    /// How the frames are to be decoded.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The reader of worker `shard`'s records. It opens a libpcap handle of its own (for
    /// the records after a hand-over), so it fails if the file has gone since `open`.
    pub fn reader(self: &Arc<Self>, shard: usize) -> Result<SharedFileReader, SourceError> {
        assert!(shard < self.shards, "shard {shard} of {}", self.shards);
        Ok(SharedFileReader {
            libpcap: CaptureFile::open_with_libpcap(&self.path)?,
            file: self.clone(),
            shard,
            block: None,
            pos: 0,
            next_block: 0,
            mode: Mode::Blocks,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Feed> {
        self.feed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Block `want` for worker `shard`, which is done with `done` (the block before it)
    /// and holds none before it; reads it if no one has, and reads the one after it if it
    /// is the first to take it (see the module docs). `None` when it was not there within
    /// `wait` (another worker is reading it, or this one is [`MAX_BLOCKS`] ahead of the
    /// slowest).
    fn take(
        &self,
        shard: usize,
        want: u64,
        done: Option<Arc<Block>>,
        wait: Duration,
    ) -> Option<Arc<Block>> {
        let mut feed = self.lock();
        feed.move_on(shard, want);
        if let Some(done) = done {
            feed.recycle(done);
        }
        self.moved.notify_all();
        let mut waited = false;
        let mut spun = false;
        loop {
            if let Some(block) = feed.get(want) {
                let block = block.clone();
                if feed.published() == want + 1 {
                    // The next block is unread: read it now, before anyone needs it.
                    drop(self.read_next(feed));
                }
                return Some(block);
            }
            // The workers take blocks in order and stop at the last: `want` is the next
            // block to read.
            debug_assert!(
                !feed.ended,
                "worker {shard} asked for a block past the last"
            );
            if feed.can_read() {
                feed = self.read_next(feed);
                continue;
            }
            if waited || feed.ended {
                return None;
            }
            if feed.reader.is_none() && !spun {
                // Another worker is reading the block: that takes well under a
                // millisecond, not worth going to sleep and being woken.
                drop(feed);
                self.spin_while_reading();
                feed = self.lock();
                spun = true;
                continue;
            }
            feed = self
                .moved
                .wait_timeout(feed, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            waited = true;
        }
    }

    /// Reads the next block (outside the lock) and publishes it, if no one is reading one
    /// and the bound on blocks held leaves room; returns the lock.
    fn read_next<'a>(&'a self, mut feed: MutexGuard<'a, Feed>) -> MutexGuard<'a, Feed> {
        if !feed.can_read() {
            return feed;
        }
        let Some(mut reader) = feed.reader.take() else {
            return feed;
        };
        let spare = feed.spare.pop();
        self.reading.store(true, Ordering::Relaxed);
        drop(feed);
        let block = reader.read_block(spare);
        let mut feed = self.lock();
        self.reading.store(false, Ordering::Release);
        if block.end.is_some() {
            feed.ended = true;
        } else {
            feed.reader = Some(reader);
        }
        feed.blocks.push_back(Arc::new(block));
        self.moved.notify_all();
        feed
    }

    /// Spins while another worker reads the next block, for at most [`SPIN_LIMIT`].
    fn spin_while_reading(&self) {
        let start = Instant::now();
        while self.reading.load(Ordering::Acquire) && start.elapsed() < SPIN_LIMIT {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
        }
    }

    /// Worker `shard` has left, done with `done`: it holds no block back any more.
    fn leave(&self, shard: usize, done: Option<Arc<Block>>) {
        let mut feed = self.lock();
        feed.move_on(shard, u64::MAX);
        if let Some(done) = done {
            feed.recycle(done);
        }
        self.moved.notify_all();
    }
}

impl Feed {
    /// Block `n`, if it is published and still held.
    fn get(&self, n: u64) -> Option<&Arc<Block>> {
        let i = n.checked_sub(self.first)?;
        self.blocks.get(usize::try_from(i).ok()?)
    }

    /// The number of blocks published so far (the next block read is this one).
    fn published(&self) -> u64 {
        self.first + self.blocks.len() as u64
    }

    /// No one is reading a block, there is one to read, and the bound leaves room for it.
    fn can_read(&self) -> bool {
        self.reader.is_some() && self.blocks.len() < MAX_BLOCKS
    }

    /// Worker `shard` will take block `next` next: the blocks every worker has passed go.
    fn move_on(&mut self, shard: usize, next: u64) {
        self.next[shard] = next;
        let slowest = self.next.iter().copied().min().unwrap_or(u64::MAX);
        while self.first < slowest {
            let Some(gone) = self.blocks.pop_front() else {
                break;
            };
            self.first += 1;
            self.recycle(gone);
        }
    }

    /// Keeps `block` to read into once no one holds it (its last holder hands it here).
    fn recycle(&mut self, block: Arc<Block>) {
        if let Ok(block) = Arc::try_unwrap(block) {
            if self.spare.len() < MAX_BLOCKS {
                self.spare.push(block);
            }
        }
    }
}

/// Reads the file's records into blocks, in order.
struct BlockReader {
    file: std::fs::File,
    format: PcapFormat,
    link: LinkType,
    shards: usize,
    block_bytes: usize,
    /// The start of a record the last block cut: the next block begins with it.
    carry: Vec<u8>,
    /// Records put into blocks so far.
    records: u64,
    /// `read` returned short (or failed: libpcap then reads again and says why).
    eof: bool,
}

impl BlockReader {
    /// The next block, read into `spare` when there is one.
    fn read_block(&mut self, spare: Option<Block>) -> Block {
        let mut block = spare.unwrap_or_else(|| Block {
            // Room for a block and the tail of a record the last one cut, so that
            // reading into it does not move it (and fault in fresh pages) as it grows.
            data: Vec::with_capacity(self.block_bytes + self.block_bytes / 4),
            own: vec![Vec::new(); self.shards],
            end: None,
        });
        block.data.clear();
        block.own.iter_mut().for_each(Vec::clear);
        block.end = None;
        block.data.extend_from_slice(&self.carry);
        self.carry.clear();
        // `block.data[..at]` holds whole records, indexed.
        let mut at = 0;
        let mut want = block.data.len() + self.block_bytes;
        loop {
            if !self.eof && block.data.len() < want {
                let room = (want - block.data.len()) as u64;
                block.data.reserve(room as usize);
                // Reads until `room` bytes or the end (`read_to_end` retries short reads).
                match (&mut self.file).take(room).read_to_end(&mut block.data) {
                    Ok(n) if n as u64 == room => {}
                    Ok(_) | Err(_) => self.eof = true,
                }
            }
            while let Some(header) = block.data[at..].first_chunk::<RECORD_HEADER>() {
                let caplen = self.format.caplen(header);
                // Longer than the snapshot: libpcap's to refuse, with its own words.
                if caplen > self.format.snapshot {
                    block.end = Some(End::HandOver {
                        records: self.records,
                    });
                    return block;
                }
                let start = at + RECORD_HEADER;
                let Some(frame) = block.data.get(start..start + caplen as usize) else {
                    break; // not whole yet
                };
                let ts = self.format.time(header);
                let shard = shard_of(self.link, frame, self.shards);
                block.own[shard].push(Rec {
                    at: start as u32,
                    len: caplen,
                    ts,
                });
                at = start + caplen as usize;
                self.records += 1;
            }
            if self.eof {
                // Bytes after the last whole record are damage: libpcap's to word.
                block.end = Some(if at == block.data.len() {
                    End::File
                } else {
                    End::HandOver {
                        records: self.records,
                    }
                });
                return block;
            }
            if at > 0 {
                self.carry.extend_from_slice(&block.data[at..]);
                block.data.truncate(at);
                return block;
            }
            // Not one whole record yet: a record longer than a block.
            want = block.data.len() + self.block_bytes;
        }
    }
}

/// One worker's records of a [`SharedFile`], in file order.
pub struct SharedFileReader {
    file: Arc<SharedFile>,
    shard: usize,
    /// The block being walked, and the position in its `own[shard]`.
    block: Option<Arc<Block>>,
    pos: usize,
    next_block: u64,
    /// This worker's own libpcap handle, for the records after a hand-over.
    libpcap: CaptureFile,
    mode: Mode,
}

/// Where a [`SharedFileReader`] takes its next record from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Blocks,
    Libpcap,
    Ended,
}

/// What [`SharedFileReader::next_record`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// It showed one record.
    Shown,
    /// No record came within the wait: the next block is being read by another worker,
    /// or this one is [`MAX_BLOCKS`] ahead of the slowest.
    NotYet,
    /// The file ends.
    End,
    /// The file is damaged here; reading cannot go on. The text is libpcap's.
    Damaged(String),
}

impl SharedFileReader {
    /// How the frames are to be decoded.
    pub fn link(&self) -> LinkType {
        self.file.link
    }

    /// Shows the next record of this worker's shard to `f` (its capture time and bytes),
    /// waiting up to about `wait` for it. After [`Step::End`] or [`Step::Damaged`], every
    /// call gives [`Step::End`].
    pub fn next_record(&mut self, wait: Duration, f: impl FnOnce(Timestamp, &[u8])) -> Step {
        loop {
            match self.mode {
                Mode::Blocks => {
                    if let Some(block) = &self.block {
                        if let Some(r) = block.own[self.shard].get(self.pos) {
                            let at = r.at as usize;
                            f(r.ts, &block.data[at..at + r.len as usize]);
                            self.pos += 1;
                            return Step::Shown;
                        }
                        match block.end {
                            // On to the next block.
                            None => {}
                            Some(End::File) => {
                                self.leave();
                                self.mode = Mode::Ended;
                                continue;
                            }
                            Some(End::HandOver { records }) => {
                                self.leave();
                                self.mode = Mode::Libpcap;
                                match self.libpcap.skip(records) {
                                    Ok(()) => {}
                                    Err(Record::Damaged(why)) => {
                                        self.mode = Mode::Ended;
                                        return Step::Damaged(why);
                                    }
                                    Err(_) => self.mode = Mode::Ended,
                                }
                                continue;
                            }
                        }
                    }
                    // Handed back, so it can be read into again once no one holds it.
                    let done = self.block.take();
                    let Some(block) = self.file.take(self.shard, self.next_block, done, wait)
                    else {
                        return Step::NotYet;
                    };
                    self.next_block += 1;
                    self.block = Some(block);
                    self.pos = 0;
                }
                Mode::Libpcap => {
                    let (link, shards) = (self.file.link, self.file.shards);
                    match self.libpcap.next_record() {
                        Record::Packet(ts, data) => {
                            if shard_of(link, data, shards) == self.shard {
                                f(ts, data);
                                return Step::Shown;
                            }
                        }
                        Record::End => {
                            self.mode = Mode::Ended;
                            return Step::End;
                        }
                        Record::Damaged(why) => {
                            self.mode = Mode::Ended;
                            return Step::Damaged(why);
                        }
                    }
                }
                Mode::Ended => return Step::End,
            }
        }
    }

    /// This worker holds no block (back) any more.
    fn leave(&mut self) {
        if self.next_block != u64::MAX {
            self.next_block = u64::MAX;
            self.file.leave(self.shard, self.block.take());
        }
    }
}

impl Drop for SharedFileReader {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw-IPv4 pcap file of `n` TCP segments on 40 connections, 30 to 1 500 bytes each.
    fn capture(n: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 228] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.truncate(8); // magic, version 2.4
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65_535u32.to_le_bytes());
        out.extend_from_slice(&228u32.to_le_bytes()); // LINKTYPE_IPV4
        for i in 0..n {
            let payload = (i as usize * 131) % 1_460 + 30;
            let mut ip = vec![
                0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
            ];
            ip[2..4].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
            let mut tcp = vec![0u8; 20];
            tcp[0..2].copy_from_slice(&(40_000 + (i % 40) as u16).to_be_bytes());
            tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
            tcp[4..8].copy_from_slice(&i.to_be_bytes());
            tcp[12] = 0x50;
            tcp[13] = 0x18;
            let mut frame = [ip, tcp].concat();
            frame.extend((0..payload).map(|k| (k + i as usize) as u8));
            for v in [i, 0, frame.len() as u32, frame.len() as u32] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&frame);
        }
        out
    }

    fn write(name: &str, bytes: &[u8]) -> String {
        let dir = std::env::temp_dir().join(format!("tcp-sniffer-shared-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    }

    /// Every record of `path`, as one reader of libpcap's sees it.
    fn all_records(path: &str) -> Vec<(u64, Vec<u8>)> {
        let mut f = CaptureFile::open_with_libpcap(path).unwrap();
        let mut out = Vec::new();
        while let Record::Packet(ts, data) = f.next_record() {
            out.push((ts.0, data.to_vec()));
        }
        out
    }

    /// Worker `k`'s records, read on its own thread to the end; `pause` slows it down.
    fn read_shard(file: &Arc<SharedFile>, k: usize, pause: bool) -> Vec<(u64, Vec<u8>)> {
        let mut reader = file.reader(k).unwrap();
        let mut got = Vec::new();
        loop {
            match reader.next_record(Duration::from_millis(5), |ts, d| {
                got.push((ts.0, d.to_vec()))
            }) {
                Step::Shown => {
                    if pause && got.len() % 64 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                Step::NotYet => {}
                Step::End => return got,
                Step::Damaged(why) => panic!("worker {k}: damaged: {why}"),
            }
        }
    }

    #[test]
    fn workers_on_threads_take_every_record_once_in_order() {
        let path = write("threads.pcap", &capture(3_000));
        let every = all_records(&path);
        for shards in [2, 3] {
            let file = SharedFile::open_with_blocks(&path, shards, 4_096).unwrap();
            let got: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..shards)
                    .map(|k| {
                        let file = &file;
                        // Worker 0 is slow: the others run into the bound on blocks held.
                        s.spawn(move || read_shard(file, k, k == 0))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (k, records) in got.iter().enumerate() {
                let want: Vec<_> = every
                    .iter()
                    .filter(|(_, d)| shard_of(LinkType::Ipv4, d, shards) == k)
                    .cloned()
                    .collect();
                assert!(!want.is_empty(), "the connections spread over every worker");
                assert_eq!(records, &want, "{shards} workers: worker {k}");
            }
            let feed = file.lock();
            assert!(feed.blocks.len() <= MAX_BLOCKS);
            assert_eq!(feed.next, vec![u64::MAX; shards], "every worker left");
        }
    }

    #[test]
    fn the_first_to_take_a_block_reads_the_next() {
        let path = write("ahead.pcap", &capture(2_000));
        let file = SharedFile::open_with_blocks(&path, 2, 4_096).unwrap();
        let mut first = file.reader(0).unwrap();
        let mut second = file.reader(1).unwrap();
        assert_eq!(first.next_record(Duration::ZERO, |_, _| {}), Step::Shown);
        assert_eq!(
            file.lock().published(),
            2,
            "block 0 taken, block 1 read ahead"
        );
        // The second to take block 0 finds block 1 read: it reads nothing.
        assert_eq!(second.next_record(Duration::ZERO, |_, _| {}), Step::Shown);
        assert_eq!(file.lock().published(), 2);
    }

    #[test]
    fn a_worker_that_leaves_holds_no_one_back() {
        let path = write("leaves.pcap", &capture(2_000));
        let file = SharedFile::open_with_blocks(&path, 2, 1_024).unwrap();
        let mut stays = file.reader(0).unwrap();
        let leaves = file.reader(1).unwrap();
        // Before it leaves, the other gets no further than the bound.
        let mut shown = 0;
        while stays.next_record(Duration::ZERO, |_, _| {}) == Step::Shown {
            shown += 1;
        }
        assert!(
            file.lock().blocks.len() == MAX_BLOCKS,
            "stopped at the bound"
        );
        drop(leaves);
        loop {
            match stays.next_record(Duration::ZERO, |_, _| {}) {
                Step::Shown => shown += 1,
                Step::End => break,
                step => panic!("{step:?} after the other worker left"),
            }
        }
        let want = all_records(&path)
            .iter()
            .filter(|(_, d)| shard_of(LinkType::Ipv4, d, 2) == 0)
            .count();
        assert_eq!(shown, want);
        assert_eq!(file.lock().blocks.len(), 0, "no block is held for no one");
    }
}

//! One small interface over every place packets come from: an AF_PACKET ring, a libpcap
//! live handle, a capture file (and, in `runtime`, the queue the libpcap reader fills).
//!
//! The one worker loop (`pipeline::worker_loop`) drives any [`PacketSource`]. A
//! source says two things about itself besides its packets:
//!
//! - [`PacketSource::HAND_OFF`]: live sources shed ([`HandOff::Shed`]: never block on the
//!   output stage, hand over after every poll, sweep idle connections on the wall clock);
//!   a file waits ([`HandOff::Wait`]: a file can wait, so nothing is ever dropped, and
//!   idle connections are swept in capture time only, so a replay's output does not depend
//!   on how fast it ran).
//! - [`PacketSource::ENDING`]: how the loop over it ends.
//!
//! Invariant: a [`Packet`] is borrowed for the callback only; a source never hands out
//! bytes that outlive one call of `poll`.

use std::time::Duration;

use super::afpacket::AfPacketRing;
use super::file::{CaptureFile, Record};
use super::pcap_live::PcapLive;
use super::shared_file::{SharedFileReader, Step};
use super::{CaptureError, LinkType, Packet};
use crate::time::Timestamp;

/// What one poll of a [`PacketSource`] gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// This many packets were shown to the callback (0: the timeout passed).
    Packets(usize),
    /// The source is done: nothing more will come.
    End,
}

/// How the worker loop over a source ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A live capture handle: on `stop`, take what the kernel already holds (a response
    /// sent a moment before `stop` is still seen), then end. Fault injection's capture
    /// point is here.
    Drain,
    /// A queue filled by another thread: run until the feeder closes it (the feeder
    /// drains its own capture handle on `stop`).
    Closed,
    /// A file: at its end, or at once on `stop` (nothing is waiting in a kernel).
    AtOnce,
}

/// How a worker hands its finished messages to the outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOff {
    /// Live capture: never block. Messages are handed over after every poll (a lone
    /// request must not wait for a full batch); a full queue holds the batch back (the
    /// next call sends it with the newer ones) up to a bound, past which it is dropped
    /// and counted.
    Shed,
    /// Wait for room, never drop: file replay (a file can wait), and live capture's last
    /// hand-overs at shutdown, when the output stage is draining. Messages are handed
    /// over in full batches.
    Wait,
}

/// Where a worker's packets come from. Packets are borrowed for the callback only.
pub trait PacketSource {
    /// How the worker loop over this source ends.
    const ENDING: Ending;
    /// How the worker loop over this source hands messages on (see [`HandOff`]).
    const HAND_OFF: HandOff;

    /// Shows the packets available within `timeout` to `f`.
    fn poll<F: FnMut(Packet<'_>)>(
        &mut self,
        timeout: Duration,
        f: F,
    ) -> Result<Polled, CaptureError>;

    /// The kernel's drop total for this source, if it has its own.
    fn kernel_drops(&mut self) -> Option<u64> {
        None
    }

    /// After [`Polled::End`]: why the source ended early (a damaged file), if it did.
    fn damage(&mut self) -> Option<String> {
        None
    }
}

impl PacketSource for AfPacketRing {
    const ENDING: Ending = Ending::Drain;
    const HAND_OFF: HandOff = HandOff::Shed;

    fn poll<F: FnMut(Packet<'_>)>(
        &mut self,
        timeout: Duration,
        f: F,
    ) -> Result<Polled, CaptureError> {
        AfPacketRing::poll(self, timeout, f).map(Polled::Packets)
    }

    fn kernel_drops(&mut self) -> Option<u64> {
        self.stats().ok().map(|s| s.drops)
    }
}

impl PacketSource for PcapLive {
    const ENDING: Ending = Ending::Drain;
    const HAND_OFF: HandOff = HandOff::Shed;

    /// Waits up to the handle's own timeout (set when it was opened); `timeout` only
    /// paces the retries while the interface is down.
    fn poll<F: FnMut(Packet<'_>)>(
        &mut self,
        timeout: Duration,
        f: F,
    ) -> Result<Polled, CaptureError> {
        match PcapLive::poll(self, f) {
            Ok(n) => Ok(Polled::Packets(n)),
            Err(e @ CaptureError::InterfaceDown { .. }) => {
                // libpcap reports a downed interface at once: don't spin on it.
                std::thread::sleep(timeout);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn kernel_drops(&mut self) -> Option<u64> {
        self.stats().ok().map(|s| s.drops)
    }
}

/// Records a file poll reads at most: between two polls the loop hands full batches over
/// and checks `stop`, so this bounds how much a poll can finish before it does.
const FILE_POLL_RECORDS: usize = 256;

/// A capture file as a [`PacketSource`]: all of it, or one worker's shard of it.
pub struct FileSource {
    file: Reading,
    damaged: Option<String>,
    ended: bool,
}

/// How a [`FileSource`] reads.
enum Reading {
    /// Every record.
    Whole(CaptureFile),
    /// Only one worker's records of a file read once for several.
    Shard(SharedFileReader),
}

impl Reading {
    fn link(&self) -> LinkType {
        match self {
            Reading::Whole(file) => file.link(),
            Reading::Shard(reader) => reader.link(),
        }
    }

    /// Shows the next record to `f`; a whole file never waits (nor says [`Step::NotYet`]).
    #[inline]
    fn next_record(&mut self, wait: Duration, f: impl FnOnce(Timestamp, &[u8])) -> Step {
        match self {
            Reading::Whole(file) => match file.next_record() {
                Record::Packet(ts, data) => {
                    f(ts, data);
                    Step::Shown
                }
                Record::End => Step::End,
                Record::Damaged(why) => Step::Damaged(why),
            },
            Reading::Shard(reader) => reader.next_record(wait, f),
        }
    }
}

impl FileSource {
    /// Every packet of `file`.
    pub fn new(file: CaptureFile) -> Self {
        FileSource {
            file: Reading::Whole(file),
            damaged: None,
            ended: false,
        }
    }

    /// One worker's packets of a file several workers share.
    pub fn shard(reader: SharedFileReader) -> Self {
        FileSource {
            file: Reading::Shard(reader),
            damaged: None,
            ended: false,
        }
    }
}

impl PacketSource for FileSource {
    const ENDING: Ending = Ending::AtOnce;
    const HAND_OFF: HandOff = HandOff::Wait;

    /// Reads up to 256 records. A worker's shard of a shared file may wait up to
    /// `timeout` for its next block (and then show nothing); a whole file never waits.
    fn poll<F: FnMut(Packet<'_>)>(
        &mut self,
        timeout: Duration,
        mut f: F,
    ) -> Result<Polled, CaptureError> {
        if self.ended {
            return Ok(Polled::End);
        }
        // `Some(damage)` once the file has ended (`Some(None)`: at its end).
        let mut ending = None;
        let mut shown = 0;
        let link = self.file.link();
        while shown < FILE_POLL_RECORDS {
            let step = self.file.next_record(timeout, |ts, data| {
                f(Packet {
                    ts,
                    data,
                    link,
                    orig_len: data.len() as u32,
                })
            });
            match step {
                Step::Shown => shown += 1,
                Step::NotYet => break,
                Step::End => {
                    ending = Some(None);
                    break;
                }
                Step::Damaged(why) => {
                    ending = Some(Some(why));
                    break;
                }
            }
        }
        if let Some(damaged) = ending {
            self.damaged = damaged;
            self.ended = true;
            if shown == 0 {
                return Ok(Polled::End);
            }
        }
        Ok(Polled::Packets(shown))
    }

    fn damage(&mut self) -> Option<String> {
        self.damaged.take()
    }
}

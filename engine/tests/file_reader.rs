//! The fast pcap reader (`capture::file`) and the file shared by several workers
//! (`capture::shared_file`) against libpcap: for every file — well-formed in every byte
//! order and timestamp precision, cut at every byte, with corrupted headers and lengths,
//! and every capture of the shared corpus — the records (bytes and timestamps), and how
//! reading ends (the end, or the damage in libpcap's words), must be the same as libpcap
//! alone gives; shared by several workers, each worker's records must be libpcap's records
//! of its shard, in order, and each must see the same ending.

mod common;

use std::path::{Path, PathBuf};

use std::time::Duration;

use tcp_sniffer::capture::shared_file::{SharedFile, Step};
use tcp_sniffer::capture::{CaptureFile, Record};
use tcp_sniffer::shard::shard_of;

/// How reading a file went: every record, then how it ended; or the open error.
#[derive(Debug, PartialEq)]
enum Outcome {
    Opened {
        records: Vec<(u64, Vec<u8>)>,
        end: Option<String>,
    },
    NotOpened(String),
}

fn read_all(mut f: CaptureFile) -> Outcome {
    let mut records = Vec::new();
    loop {
        match f.next_record() {
            Record::Packet(ts, data) => records.push((ts.0, data.to_vec())),
            Record::End => return Outcome::Opened { records, end: None },
            Record::Damaged(why) => {
                return Outcome::Opened {
                    records,
                    end: Some(why),
                }
            }
        }
    }
}

/// Both readers over `path`; panics (naming `what`) when they differ.
fn same_as_libpcap(path: &Path, what: &str) -> Outcome {
    let p = path.to_str().unwrap();
    let fast = match CaptureFile::open(p) {
        Ok(f) => read_all(f),
        Err(e) => Outcome::NotOpened(e.to_string()),
    };
    let reference = match CaptureFile::open_with_libpcap(p) {
        Ok(f) => read_all(f),
        Err(e) => Outcome::NotOpened(e.to_string()),
    };
    assert_eq!(
        fast, reference,
        "{what}: the fast reader differs from libpcap"
    );
    // Small blocks for small files: records straddle blocks, and the workers run into
    // the bound on blocks held.
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let block = if len < 100_000 { 37 } else { 100_000 };
    for shards in [2, 3] {
        shared_same_as(p, shards, block, &reference, what);
    }
    fast
}

/// Reads `path` shared by `shards` workers (blocks of `block_bytes`), the workers taking
/// turns on one thread; panics unless each worker's records are `reference`'s records of
/// its shard, in order, ending as `reference` does.
fn shared_same_as(path: &str, shards: usize, block_bytes: usize, reference: &Outcome, what: &str) {
    let what = format!("{what}, shared by {shards} workers");
    let file = match SharedFile::open_with_blocks(path, shards, block_bytes) {
        Ok(f) => f,
        Err(e) => {
            assert_eq!(&Outcome::NotOpened(e.to_string()), reference, "{what}");
            return;
        }
    };
    let Outcome::Opened { records, end } = reference else {
        panic!("{what}: opened, but libpcap could not open it");
    };
    let link = file.link();
    let mut readers: Vec<_> = (0..shards).map(|k| file.reader(k).unwrap()).collect();
    let mut got: Vec<Vec<(u64, Vec<u8>)>> = vec![Vec::new(); shards];
    let mut ends: Vec<Option<Option<String>>> = vec![None; shards];
    let mut idle_rounds = 0;
    while ends.iter().any(Option::is_none) {
        let mut moved = false;
        for k in 0..shards {
            if ends[k].is_some() {
                continue;
            }
            match readers[k].next_record(Duration::ZERO, |ts, data| {
                got[k].push((ts.0, data.to_vec()))
            }) {
                Step::Shown => moved = true,
                Step::NotYet => {}
                Step::End => ends[k] = Some(None),
                Step::Damaged(why) => ends[k] = Some(Some(why)),
            }
        }
        idle_rounds = if moved { 0 } else { idle_rounds + 1 };
        assert!(idle_rounds < 1000, "{what}: the workers are stuck");
    }
    for k in 0..shards {
        let want: Vec<_> = records
            .iter()
            .filter(|(_, data)| shard_of(link, data, shards) == k)
            .cloned()
            .collect();
        assert_eq!(got[k], want, "{what}: worker {k}'s records");
        assert_eq!(ends[k].as_ref(), Some(end), "{what}: worker {k}'s ending");
    }
}

/// A classic pcap file: `records` are (seconds, fraction, original length, bytes).
fn pcap(swapped: bool, nanos: bool, snaplen: u32, records: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
    let u32b = |v: u32| {
        if swapped {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if swapped {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u32b(snaplen));
    out.extend_from_slice(&u32b(1)); // Ethernet
    for (secs, frac, len, data) in records {
        out.extend_from_slice(&u32b(*secs));
        out.extend_from_slice(&u32b(*frac));
        out.extend_from_slice(&u32b(data.len() as u32));
        out.extend_from_slice(&u32b(*len));
        out.extend_from_slice(data);
    }
    out
}

fn frame(n: usize, fill: u8) -> Vec<u8> {
    (0..n).map(|i| fill.wrapping_add(i as u8)).collect()
}

/// Records that exercise the edges: empty, tiny, cut (caplen < len), timestamps with the
/// high bit set (libpcap's fields are signed) and fractions out of range.
fn sample_records() -> Vec<(u32, u32, u32, Vec<u8>)> {
    vec![
        (1_700_000_000, 123_456, 60, frame(60, 1)),
        (1_700_000_001, 999_999_999, 1514, frame(120, 2)),
        (0x8000_0001, 0x8000_0000, 0, Vec::new()),
        (5, 1_000_000, 200, frame(200, 3)),
        (u32::MAX, u32::MAX, 80, frame(80, 4)),
        (7, 999, 70, frame(70, 5)),
    ]
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tcp-sniffer-file-reader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn well_formed_files_read_the_same_in_every_byte_order_and_precision() {
    let dir = scratch();
    for swapped in [false, true] {
        for nanos in [false, true] {
            for snaplen in [0, 100, 65_535, 262_144, 1_000_000] {
                let bytes = pcap(swapped, nanos, snaplen, &sample_records());
                let path = dir.join("whole.pcap");
                std::fs::write(&path, &bytes).unwrap();
                let what = format!("swapped {swapped} nanos {nanos} snaplen {snaplen}");
                match same_as_libpcap(&path, &what) {
                    Outcome::Opened { records, end } => {
                        // A snaplen of 100 cuts the 120- and 200-byte records (libpcap does).
                        assert_eq!(records.len(), 6, "{what}");
                        assert_eq!(end, None, "{what}");
                    }
                    o => panic!("{what}: {o:?}"),
                }
                // The fast reader really is the one reading (the test would pass vacuously
                // otherwise).
                let mut f = CaptureFile::open(path.to_str().unwrap()).unwrap();
                assert!(f.is_fast(), "{what}: the fast reader was not chosen");
                assert!(matches!(f.next_record(), Record::Packet(..)));
                assert!(f.is_fast(), "{what}: handed over on a plain record");
            }
        }
    }
}

#[test]
fn files_cut_at_every_byte_read_the_same() {
    let dir = scratch();
    for swapped in [false, true] {
        for nanos in [false, true] {
            let bytes = pcap(swapped, nanos, 65_535, &sample_records());
            for cut in 0..=bytes.len() {
                let path = dir.join("cut.pcap");
                std::fs::write(&path, &bytes[..cut]).unwrap();
                same_as_libpcap(
                    &path,
                    &format!("swapped {swapped} nanos {nanos} cut at {cut}"),
                );
            }
        }
    }
}

#[test]
fn corrupted_files_read_the_same() {
    let dir = scratch();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for swapped in [false, true] {
        for nanos in [false, true] {
            let bytes = pcap(swapped, nanos, 65_535, &sample_records());
            // Every 4-byte field of every header set to values at the edges.
            for at in (0..bytes.len().min(24 + 16 * 6 + 600)).step_by(4) {
                for v in [
                    0u32,
                    1,
                    0x7fff_ffff,
                    0x8000_0000,
                    u32::MAX,
                    262_144,
                    262_145,
                    65_536,
                ] {
                    let mut b = bytes.clone();
                    if at + 4 > b.len() {
                        continue;
                    }
                    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                    let path = dir.join("field.pcap");
                    std::fs::write(&path, &b).unwrap();
                    same_as_libpcap(
                        &path,
                        &format!("swapped {swapped} nanos {nanos} field {at} = {v:#x}"),
                    );
                }
            }
            // Random bytes flipped.
            for round in 0..300 {
                let mut b = bytes.clone();
                for _ in 0..1 + next() % 4 {
                    let i = (next() % b.len() as u64) as usize;
                    b[i] = next() as u8;
                }
                let path = dir.join("flip.pcap");
                std::fs::write(&path, &b).unwrap();
                same_as_libpcap(
                    &path,
                    &format!("swapped {swapped} nanos {nanos} round {round}"),
                );
            }
        }
    }
    // Records up to 70 000 bytes, 7 MB in all: many refills of the read buffer, records
    // straddling its end.
    let big: Vec<_> = (0..200u32)
        .map(|i| (i, i, 70_000, frame((i as usize * 97) % 70_000, i as u8)))
        .collect();
    let path = dir.join("many.pcap");
    std::fs::write(&path, pcap(false, false, 0, &big)).unwrap();
    match same_as_libpcap(&path, "200 records across refills") {
        Outcome::Opened { records, end } => {
            assert_eq!(records.len(), 200);
            assert_eq!(end, None);
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn every_corpus_capture_reads_the_same() {
    let mut files: Vec<PathBuf> = vec![
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/demo.pcap"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/secrets.pcap"),
    ];
    if let Some(corpus) = common::corpus_dir() {
        let mut stack = vec![corpus];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p
                    .extension()
                    .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
                {
                    files.push(p);
                }
            }
        }
    }
    assert!(
        files.len() > 2 || !common::is_ci(),
        "no corpus captures found"
    );
    for f in &files {
        same_as_libpcap(f, &f.display().to_string());
    }
}

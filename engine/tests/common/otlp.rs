//! An OTLP/HTTP receiver on loopback for the tests: answers 200 to every POST and keeps
//! the headers and bodies (gunzipped when `Content-Encoding: gzip`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// Every request the receiver got: headers and the decoded export request.
pub type Received = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

/// Starts the receiver; returns its `/v1/traces` URL and what it received.
pub fn receiver() -> (String, Received) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", l.local_addr().unwrap());
    let got: Received = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let g = g.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n");
                    if let Some(end) = head_end {
                        let mut hs = [httparse::EMPTY_HEADER; 32];
                        let mut req = httparse::Request::new(&mut hs);
                        req.parse(&buf).unwrap();
                        let headers: Vec<(String, String)> = req
                            .headers
                            .iter()
                            .map(|h| {
                                (
                                    h.name.to_ascii_lowercase(),
                                    String::from_utf8_lossy(h.value).into_owned(),
                                )
                            })
                            .collect();
                        let len: usize = headers
                            .iter()
                            .find(|(k, _)| k == "content-length")
                            .map(|(_, v)| v.parse().unwrap())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            match c.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        }
                        let mut body = buf[end + 4..end + 4 + len].to_vec();
                        buf.drain(..end + 4 + len);
                        if headers
                            .iter()
                            .any(|(k, v)| k == "content-encoding" && v == "gzip")
                        {
                            let mut plain = Vec::new();
                            flate2::read::GzDecoder::new(&body[..])
                                .read_to_end(&mut plain)
                                .unwrap();
                            body = plain;
                        }
                        g.lock().unwrap().push((headers, body));
                        let _ = c.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                        );
                        continue;
                    }
                    match c.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (url, got)
}

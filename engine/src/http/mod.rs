//! HTTP/1 assembly and pairing. (Being written.)

//! llhttp conformance corpus (being written).

#[test]
fn placeholder() {}

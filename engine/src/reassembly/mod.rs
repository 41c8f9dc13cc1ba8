//! TCP reassembly per direction. (Being written.)

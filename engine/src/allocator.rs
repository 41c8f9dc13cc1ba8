//! The global allocator the binaries use: mimalloc, entered by its plain `mi_malloc` path.
//!
//! The `mimalloc` crate's `MiMalloc` sends every allocation through `mi_malloc_aligned`,
//! which for the alignments Rust asks for almost always (8 or 16) does extra work before
//! reaching the same page allocation: about half the cost of a small allocation, and the data
//! path makes several per HTTP message (header values, the header list). `mi_malloc` already
//! returns blocks aligned to 16 bytes, or to the block size when that is smaller, so the
//! aligned entry is only needed above that; the rule is the one std's `System` allocator uses
//! for `malloc`. A block of at most `MI_SMALL_SIZE_MAX` bytes (1 KiB on 64-bit) is asked of
//! `mi_malloc_small`: the very path `mi_malloc` takes for that size (same pages, same
//! alignment, freed by `mi_free` alike), inlined instead of behind a call and a size test
//! (about 8 instructions of some 30 per allocation, and most allocations are that small).
//!
//! The library itself never installs it; the `tcp-sniffer` and `sniffer-perf` binaries and
//! the Node addon do. The addon is loaded with `dlopen`, where a library's thread-locals in
//! the initial-exec model take static TLS, of which glibc keeps only a small surplus (the
//! load fails with "cannot allocate memory in static TLS block" once it is gone): mimalloc
//! is built with local-dynamic TLS (`engine/Cargo.toml`), which the linker relaxes to the
//! direct form in an executable, so the binaries pay nothing for it. The Node package's
//! tests check that the addon claims no static TLS.
//!
//! The heap stays in 4 KiB pages: mimalloc is built without its `madvise(MADV_HUGEPAGE)`
//! (the `no_thp` feature), and [`keep_heap_in_small_pages`] turns transparent huge pages
//! off for the process where the host has them on for everything. With 2 MiB pages each
//! partly used heap region is resident whole: peak RSS was about twice as high (S replay
//! 25 -> 10 MiB, two workers on the HTTP/2 workload 80 -> 45 MiB), at no measurable gain
//! in speed.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Alignment every `mi_malloc` block of at least this size already has (mimalloc's
/// `MI_MAX_ALIGN_SIZE`).
const PLAIN_ALIGN: usize = 16;

/// The largest size `mi_malloc_small` takes (mimalloc's `MI_SMALL_SIZE_MAX`: 128 words).
const SMALL_SIZE_MAX: usize = 128 * std::mem::size_of::<*mut c_void>();

extern "C" {
    /// `void* mi_malloc_small(size_t size)`, for `size <= MI_SMALL_SIZE_MAX`: part of the
    /// mimalloc library `libmimalloc-sys` builds and links, declared here because that
    /// crate declares it only under its `extended` feature, which brings in another crate.
    fn mi_malloc_small(size: usize) -> *mut c_void;
}

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`), for hosts
/// whose `transparent_hugepage/enabled` is `always` (see the module docs). Call it first
/// thing in `main`; where the kernel refuses, nothing changes but the resident set.
pub fn keep_heap_in_small_pages() {
    // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` reads no memory; it sets one flag
    // of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// mimalloc as the global allocator, small alignments by the unaligned entry points.
pub struct MiMalloc;

#[inline(always)]
fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

// SAFETY: every block comes from mimalloc with at least the layout's alignment (`plain`
// picks the unaligned entry only where its natural alignment suffices) and is freed by it.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the mimalloc entry points accept any size (`mi_malloc_small` any up to
        // `MI_SMALL_SIZE_MAX`, checked); `plain` holds only where `mi_malloc`'s natural
        // alignment, which `mi_malloc_small`'s blocks share, already satisfies `layout`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                if layout.size() <= SMALL_SIZE_MAX {
                    mi_malloc_small(layout.size()) as *mut u8
                } else {
                    mi::mi_malloc(layout.size()) as *mut u8
                }
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()) as *mut u8
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from one of the mimalloc entry points above; `mi_free` frees
        // blocks from any of them.
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; a block moved by
        // `mi_realloc` keeps `mi_malloc`'s alignment, which `plain` says is enough.
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every layout the data path could ask for comes back aligned, through growth and
    /// shrinking, whichever entry point served it.
    #[test]
    fn blocks_are_aligned_as_asked_through_realloc() {
        let a = MiMalloc;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1usize, 3, 8, 15, 16, 17, 100, 1024, 1025, 4096, 1 << 20] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: each block is used within its size and freed once, with its layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc size {size} align {align}");
                    p.write_bytes(0xa5, size);
                    let grown = size * 3 + 5;
                    let q = a.realloc(p, layout, grown);
                    assert_eq!(q as usize % align, 0, "grow {size}->{grown} align {align}");
                    assert_eq!(*q.add(size - 1), 0xa5, "growing keeps the contents");
                    let r = a.realloc(q, Layout::from_size_align(grown, align).unwrap(), 1);
                    assert_eq!(r as usize % align, 0, "shrink {grown}->1 align {align}");
                    assert_eq!(*r, 0xa5, "shrinking keeps the first byte");
                    a.dealloc(r, Layout::from_size_align(1, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}

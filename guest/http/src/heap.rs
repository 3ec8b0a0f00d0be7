//! The guest's allocator when built without WASI (wasm32-unknown-unknown):
//! talc over the free tail of the initial memory first, then over pages
//! added with `memory.grow`. Rust's own allocator for that target grows
//! memory for its very first allocation, and every `memory.grow` costs the
//! host a change of page protection (bench/RESULTS.md).
//!
//! The heap is handed to talc 16 KiB at a time, even within the initial
//! memory: talc writes at both ends of its free space on every
//! allocation, so a heap spanning the whole initial memory would dirty
//! its far end in every fetch (a page fault on an instance slot's first
//! use, a page to reset after every fetch); a small fetch's heap fits in
//! the first step.

use core::alloc::Layout;
use core::arch::wasm32;
use talc::{locking::AssumeUnlockable, OomHandler, Span, Talc, Talck};

/// A wasm page.
const PAGE: usize = 64 * 1024;

/// How much more of the memory talc is given at a time.
const STEP: usize = 16 * 1024;

extern "C" {
    /// The end of the linker's data and stack: the heap starts here.
    static __heap_base: u8;
}

/// Where the heap is; empty until the first allocation.
pub struct Heap(Span);

impl OomHandler for Heap {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let need = layout.size() + layout.align() * 2 + 256;
        let step = need.next_multiple_of(STEP);
        let mut end = wasm32::memory_size::<0>() * PAGE;
        // The heap's next span: what the initial memory has left, then
        // grown pages.
        let (base, acme) = match talc.oom_handler.0.get_base_acme() {
            Some((base, acme)) => (base as usize, acme as usize),
            None => {
                let base = core::ptr::addr_of!(__heap_base) as usize;
                (base, base)
            }
        };
        if acme + step > end {
            let pages = (acme + step - end).div_ceil(PAGE);
            if wasm32::memory_grow::<0>(pages) == usize::MAX {
                return Err(());
            }
            end += pages * PAGE;
        }
        let new_acme = (acme + step).min(end) as *mut u8;
        talc.oom_handler.0 = if talc.oom_handler.0.is_empty() {
            // SAFETY: [base, new_acme) is memory nothing else uses.
            unsafe { talc.claim(Span::new(base as *mut u8, new_acme))? }
        } else {
            // SAFETY: the heap ends at `acme` and what follows up to
            // `new_acme` is memory nothing else uses: grow it in place.
            unsafe { talc.extend(talc.oom_handler.0, Span::new(base as *mut u8, new_acme)) }
        };
        Ok(())
    }
}

/// The guest's global allocator. The guest is single-threaded.
#[global_allocator]
static ALLOCATOR: Talck<AssumeUnlockable, Heap> = Talc::new(Heap(Span::empty())).lock();

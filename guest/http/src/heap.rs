//! The guest's allocator when built without WASI (wasm32-unknown-unknown):
//! talc over the free tail of the initial memory first, then over pages
//! added with `memory.grow`. Rust's own allocator for that target grows
//! memory for its very first allocation, and every `memory.grow` costs the
//! host a change of page protection (bench/RESULTS.md).

use core::alloc::Layout;
use core::arch::wasm32;
use talc::{locking::AssumeUnlockable, OomHandler, Span, Talc, Talck};

/// A wasm page.
const PAGE: usize = 64 * 1024;

extern "C" {
    /// The end of the linker's data and stack: the heap starts here.
    static __heap_base: u8;
}

/// Where the heap is; empty until the first allocation.
pub struct Heap(Span);

impl OomHandler for Heap {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let end = wasm32::memory_size::<0>() * PAGE;
        if talc.oom_handler.0.is_empty() {
            let base = core::ptr::addr_of!(__heap_base) as usize;
            if end > base + PAGE / 16 {
                // SAFETY: [base, end) is memory nothing else uses.
                talc.oom_handler.0 = unsafe { talc.claim(Span::new(base as *mut u8, end as *mut u8))? };
                return Ok(());
            }
        }
        let need = layout.size() + layout.align() * 2 + 256;
        let pages = need.div_ceil(PAGE);
        if wasm32::memory_grow::<0>(pages) == usize::MAX {
            return Err(());
        }
        let new_end = (end + pages * PAGE) as *mut u8;
        talc.oom_handler.0 = match talc.oom_handler.0.get_base_acme() {
            // SAFETY: the heap ends where memory ended: grow it in place.
            Some((base, acme)) if acme as usize == end => unsafe {
                talc.extend(talc.oom_handler.0, Span::new(base, new_end))
            },
            // SAFETY: the new pages are ours alone.
            _ => unsafe { talc.claim(Span::new(end as *mut u8, new_end))? },
        };
        Ok(())
    }
}

/// The guest's global allocator. The guest is single-threaded.
#[global_allocator]
static ALLOCATOR: Talck<AssumeUnlockable, Heap> = Talc::new(Heap(Span::empty())).lock();

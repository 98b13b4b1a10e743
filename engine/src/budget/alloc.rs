//! The memory meter: a global allocator that counts, per thread, the bytes allocated and
//! not yet freed, so the budget can stop an expression that grows memory.
//!
//! A program opts in with `#[global_allocator] static A: MeteredAllocator = MeteredAllocator;`
//! (the `pratica` binary does). Without it the memory limit is not enforced; fuel, time and
//! stack still are.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

/// The system allocator, counting live bytes per thread for the expression budget.
pub struct MeteredAllocator;

fn add(delta: isize) {
    // A const-initialised `Cell` without a destructor is never torn down, so this cannot
    // fail; `try_with` keeps the allocator from panicking if it ever did.
    let _ = LIVE.try_with(|live| live.set(live.get().wrapping_add(delta)));
}

/// Bytes allocated and not freed by this thread (memory freed by another thread is counted
/// there); only differences are meaningful.
pub(super) fn live_bytes() -> isize {
    LIVE.try_with(Cell::get).unwrap_or(0)
}

// SAFETY: every method forwards to `System` with the same arguments and returns its result
// unchanged; the bookkeeping touches only a thread-local integer and never allocates.
unsafe impl GlobalAlloc for MeteredAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (the caller upholds `GlobalAlloc::alloc`'s contract).
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        new
    }
}

//! `cutover proxy` with a counting global allocator, for measuring allocations per request:
//! every line read on stdin prints `allocs <n> bytes <n> live <n>` to stdout: allocations and
//! bytes allocated since start, and bytes allocated and not yet freed (the live heap).
//! Used by `bench/proxy/perreq.sh`:
//! `cargo build --release -p cutover-proxy --example proxy_alloc`.

#![allow(unsafe_code)] // a GlobalAlloc impl is unsafe by definition; it only forwards to System.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::BufRead as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use clap::Parser;
use cutover_proxy::cli::{self, ProxyArgs};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ProxyArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    std::thread::spawn(|| {
        for _ in std::io::stdin().lock().lines() {
            println!(
                "allocs {} bytes {} live {}",
                ALLOCS.load(Relaxed),
                BYTES.load(Relaxed),
                LIVE.load(Relaxed)
            );
        }
    });
    cli::main(Cli::parse().args).await
}

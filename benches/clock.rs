//! What a clock read costs on the check path: the exact epoch seconds
//! (`SystemTime::now`), the coarse stamp (one atomic load), and `Instant::now`
//! (the latency histogram's). Run with `cargo bench --bench clock`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failure should stop loudly"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use forward_auth::clock::{coarse_now, now};

fn clocks(c: &mut Criterion) {
    c.bench_function("clock: now() (SystemTime, epoch seconds)", |b| {
        b.iter(|| black_box(now()))
    });
    // Started before measuring: the first call spawns the ticker thread.
    black_box(coarse_now());
    c.bench_function("clock: coarse_now() (one atomic load)", |b| {
        b.iter(|| black_box(coarse_now()))
    });
    c.bench_function("clock: Instant::now()", |b| {
        b.iter(|| black_box(std::time::Instant::now()))
    });
}

criterion_group!(clock, clocks);
criterion_main!(clock);

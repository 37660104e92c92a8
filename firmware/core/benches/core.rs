//! Microbenchmarks of the per-byte and per-segment costs in `shoal-core`.
//!
//! What is measured, by criterion group (each reports a throughput):
//!
//! - `wire`: [`wire::encode`] and [`wire::decode`] of one `Data` datagram at the default
//!   [`wire::DEFAULT_MAX_DATAGRAM`] (1232 bytes), its fragment sized the way the engine sizes
//!   it (about 1150 bytes). Both include the HMAC. Bytes/s of datagram.
//! - `mac`: [`Authenticator::tag`] and [`Authenticator::verify`] alone over 1232 bytes. Bytes/s.
//! - `block`: [`block_hash`] of one 16 KiB block, and [`SignedManifest::check_block`] (length
//!   check, hash and compare) of that block. Bytes/s.
//! - `manifest`: [`SignedManifest::build`] of a 1 MiB segment (64 block hashes plus one ed25519
//!   signature), the same for a 1 KiB segment (essentially the signature alone), and
//!   [`UnverifiedManifest::parse`] + [`UnverifiedManifest::verify`] of the 1 MiB segment's
//!   manifest. Manifests/s.
//! - `store`: [`Store::insert_complete`] of 1 MiB segments into an 8 MiB store that is already
//!   full, so every insert evicts the oldest segment (bytes/s of segment); and
//!   [`Store::put_block`] of verified 16 KiB blocks into a 1 MiB segment (bytes/s of block).
//!   When that segment completes it is removed and its manifest admitted again, so the figure
//!   includes 1/64 of admitting a segment and allocating its buffer, as on a real box.
//!
//! Run all of them (optimised with the `bench` profile of the workspace):
//!
//! ```text
//! cargo bench -p shoal-core --bench core
//! ```
//!
//! For a quick look, shorten the measurement, and pass a filter to run only some groups:
//!
//! ```text
//! cargo bench -p shoal-core --bench core -- --warm-up-time 1 --measurement-time 2
//! cargo bench -p shoal-core --bench core -- manifest/
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput};
use shoal_core::wire::{self, Data, Header, Message};
use shoal_core::{
    block_hash, Authenticator, BlockOutcome, ChannelId, Identity, Instant, NetworkKey, PublicKey,
    SegmentInfo, SignedManifest, Store, UnverifiedManifest, BLOCK_SIZE,
};

/// One media segment in the benchmarks: 64 blocks, about 3 s of a 3 Mbit/s stream.
const SEGMENT_LEN: usize = 1024 * 1024;
/// A segment so small that building its manifest costs little more than the signature.
const SMALL_SEGMENT_LEN: usize = 1024;
/// The store budget for the eviction benchmark: room for eight segments.
const STORE_BUDGET: usize = 8 * SEGMENT_LEN;
/// Distinct segments cycled through the full store; more than it holds, so each one inserted
/// has been evicted since it was last inserted.
const SEGMENT_POOL: u64 = 16;

fn identity() -> Identity {
    Identity::from_seed([0x5e; 32])
}

fn auth() -> Authenticator {
    Authenticator::new(&NetworkKey::from_bytes([0xa7; 32]))
}

fn channel() -> ChannelId {
    ChannelId::derive("news", "https://origin.example/news/index.m3u8")
}

/// Deterministic, incompressible-looking bytes (xorshift), so no input is all zeros.
fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

fn segment_info(seq: u64) -> SegmentInfo {
    SegmentInfo::new(channel(), seq, Duration::from_secs(3))
}

fn build_manifest(seq: u64, bytes: &[u8]) -> SignedManifest {
    SignedManifest::build(&identity(), segment_info(seq), bytes)
        .expect("segment is non-empty and within MAX_SEGMENT_LEN")
}

fn wire_benches(c: &mut Criterion) {
    let auth = auth();
    let block = pseudo_random_bytes(BLOCK_SIZE, 1);
    let header = Header {
        sender: identity().node_id(),
        receiver: shoal_core::NodeId([7; 16]),
        session: 0x9e37_79b9,
        packet: 1_234_567,
    };
    let data = |offset: u16, bytes| {
        Message::Data(Data {
            channel: channel(),
            seq: 1_700_000_000,
            tag: 0xdead_beef,
            block: 41,
            offset,
            bytes,
        })
    };
    // Fragment sizing as in the engine's outbound path: the datagram minus framing, the message
    // without payload and at most 3 bytes of length prefix.
    let overhead = wire::FRAMING_LEN + wire::body_len(&header, &data(0, &[])) + 3;
    let fragment_len = wire::DEFAULT_MAX_DATAGRAM - overhead;
    let offset = 4 * fragment_len;
    let message = data(
        u16::try_from(offset).expect("the fifth fragment starts inside a 16 KiB block"),
        &block[offset..offset + fragment_len],
    );

    let mut buf = [0u8; wire::DEFAULT_MAX_DATAGRAM];
    let len = wire::encode(&auth, &header, &message, &mut buf)
        .expect("fragment sized like the engine's fits the default datagram");
    let datagram = buf[..len].to_vec();
    let decoded = wire::decode(&auth, &datagram).expect("a datagram we just encoded decodes");
    assert_eq!(decoded.message, message, "round trip changed the message");

    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function(format!("encode_data_{len}B"), |b| {
        let mut out = [0u8; wire::DEFAULT_MAX_DATAGRAM];
        b.iter(|| {
            wire::encode(&auth, black_box(&header), black_box(&message), &mut out)
                .expect("same message as encoded above")
        })
    });
    group.bench_function(format!("decode_data_{len}B"), |b| {
        b.iter(|| wire::decode(&auth, black_box(&datagram)).expect("valid datagram"))
    });
    group.finish();
}

fn mac_benches(c: &mut Criterion) {
    let auth = auth();
    let data = pseudo_random_bytes(wire::DEFAULT_MAX_DATAGRAM, 2);
    let tag = auth.tag(&data);

    let mut group = c.benchmark_group("mac");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("tag_1232B", |b| b.iter(|| auth.tag(black_box(&data))));
    group.bench_function("verify_1232B", |b| {
        b.iter(|| {
            let ok = auth.verify(black_box(&data), black_box(&tag));
            assert!(ok, "tag of these very bytes");
        })
    });
    group.finish();
}

fn block_benches(c: &mut Criterion) {
    let segment = pseudo_random_bytes(SEGMENT_LEN, 3);
    let manifest = build_manifest(1, &segment);
    let index = 5;
    let block = &segment[index * BLOCK_SIZE..(index + 1) * BLOCK_SIZE];

    let mut group = c.benchmark_group("block");
    group.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    group.bench_function("block_hash_16KiB", |b| b.iter(|| block_hash(black_box(block))));
    group.bench_function("check_block_16KiB", |b| {
        b.iter(|| {
            let ok = manifest.check_block(black_box(index), black_box(block));
            assert!(ok, "block cut from the segment the manifest describes");
        })
    });
    group.finish();
}

/// Fewer samples for benchmarks of milliseconds per iteration, so a short run stays short.
fn slow_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    group
}

fn manifest_benches(c: &mut Criterion) {
    let segment = pseudo_random_bytes(SEGMENT_LEN, 4);
    let small = pseudo_random_bytes(SMALL_SEGMENT_LEN, 5);
    let me = identity();
    let key = PublicKey::from_bytes(&me.public_key()).expect("an identity's own key is a point");
    let encoded = build_manifest(2, &segment).encoded().clone();
    let (info, small_info) = (segment_info(2), segment_info(3));

    let mut group = slow_group(c, "manifest");
    group.throughput(Throughput::Elements(1));
    group.bench_function("build_sign_1MiB", |b| {
        b.iter(|| SignedManifest::build(&me, info, black_box(&segment)))
    });
    group.bench_function("build_sign_1KiB", |b| {
        b.iter(|| SignedManifest::build(&me, small_info, black_box(&small)))
    });
    group.bench_function("parse_verify_1MiB", |b| {
        b.iter(|| {
            UnverifiedManifest::parse(black_box(&encoded))
                .and_then(|m| m.verify(&key))
                .expect("manifest signed by this key")
        })
    });
    group.finish();
}

fn store_benches(c: &mut Criterion) {
    let segment = pseudo_random_bytes(SEGMENT_LEN, 6);
    let pool: Vec<SignedManifest> = (0..SEGMENT_POOL).map(|seq| build_manifest(seq, &segment)).collect();
    let held = (STORE_BUDGET / SEGMENT_LEN) as u64;

    let mut group = slow_group(c, "store");
    group.throughput(Throughput::Bytes(SEGMENT_LEN as u64));

    // Fill the store first, so that every measured insert evicts exactly one segment. The ring
    // is longer than the pool, so only the budget evicts.
    let mut store = Store::new(STORE_BUDGET, 2 * SEGMENT_POOL as usize);
    for manifest in &pool[..held as usize] {
        store.insert_complete(manifest.clone(), &segment, Instant::ZERO).expect("fits the empty store");
    }
    let mut next = held as usize;
    group.bench_function("insert_complete_1MiB_evicting", |b| {
        b.iter_batched(
            || {
                // Cloning shares the encoded bytes and copies 64 hashes: kept out of the timing.
                let manifest = pool[next % pool.len()].clone();
                next += 1;
                manifest
            },
            |manifest| {
                store
                    .insert_complete(manifest, black_box(&segment), Instant::ZERO)
                    .expect("the store evicts to make room")
            },
            BatchSize::SmallInput,
        )
    });
    let counters = store.counters();
    assert_eq!(counters.rejected, 0);
    assert_eq!(counters.evicted, counters.admitted - held, "every insert evicted one segment");

    group.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    let manifest = pool[0].clone();
    let (channel, seq, tag) = (channel(), manifest.manifest().seq, manifest.tag());
    let mut store = Store::new(STORE_BUDGET, 2);
    store.admit(manifest.clone(), Instant::ZERO).expect("fits the empty store");
    let (mut index, mut puts) = (0usize, 0u64);
    group.bench_function("put_block_16KiB", |b| {
        b.iter(|| {
            let block = &segment[index * BLOCK_SIZE..(index + 1) * BLOCK_SIZE];
            let outcome = store
                .put_block(channel, seq, tag, index, black_box(block))
                .expect("block cut from the segment its manifest describes");
            puts += 1;
            index += 1;
            if outcome == BlockOutcome::Completed {
                // Start the segment over: only a fresh segment stores blocks rather than
                // answering `Duplicate`.
                store.remove(channel, seq);
                store.admit(manifest.clone(), Instant::ZERO).expect("the store is empty again");
                index = 0;
            }
            outcome
        })
    });
    let counters = store.counters();
    assert_eq!(counters.blocks, puts, "every put stored a new block");
    assert_eq!(counters.bad_blocks, 0);
    group.finish();
}

criterion_group!(benches, wire_benches, mac_benches, block_benches, manifest_benches, store_benches);
criterion_main!(benches);

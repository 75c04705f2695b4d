//! Cost of the per-heartbeat wire work: signing and encoding an outgoing status message, and
//! decoding and verifying a received one, for each signature method.

use std::error::Error;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vigil::wire::auth::{AuthKeys, AuthMethod};
use vigil::wire::datagram::{self, InnerAuth};
use vigil::wire::{FieldValue, Message};

/// A status message as Heartbeat 3.0.6 sends it every keepalive (spec §1.5's example).
fn status_message() -> Message {
    let mut message = Message::with_type("status");
    message.push_str("st", "active");
    message.push_str("dt", "7530");
    message.push_str("protocol", "1");
    message.push_str("src", "node1");
    message.push("srcuuid", FieldValue::Binary((0..16).collect()));
    message.push_str("seq", "2a");
    message.push_str("hg", "5");
    message.push_str("ts", "4f6b1c2a");
    message.push_str("ld", "0.00 0.01 0.05 1/100 1234");
    message.push_str("ttl", "3");
    message
}

/// One key set per method, each using slot 1 as the outbound slot.
fn key_sets() -> Result<Vec<(&'static str, AuthKeys)>, Box<dyn Error>> {
    let methods = [
        AuthMethod::Sha1 {
            key: "labsecret".into(),
        },
        AuthMethod::Md5 {
            key: "labsecret".into(),
        },
        AuthMethod::Crc,
    ];
    methods
        .into_iter()
        .map(|method| Ok((method.name(), AuthKeys::new(1, vec![(1, method)])?)))
        .collect()
}

/// One signature method's inputs: its keys and the datagram they produce.
struct MethodCase {
    /// The method's name, used as the benchmark's name.
    name: &'static str,
    /// Slot 1 with this method.
    keys: AuthKeys,
    /// The status message signed and encoded with `keys`.
    datagram: Vec<u8>,
}

/// A case per method, each checked to decode before anything is timed.
fn method_cases(message: &Message) -> Result<Vec<MethodCase>, Box<dyn Error>> {
    let mut cases = Vec::new();
    for (name, keys) in key_sets()? {
        let datagram = datagram::encode(message, &keys, InnerAuth::Classic)?;
        datagram::decode(&datagram, &keys)?;
        cases.push(MethodCase {
            name,
            keys,
            datagram,
        });
    }
    Ok(cases)
}

fn codec(c: &mut Criterion) {
    let message = status_message();
    let cases = match method_cases(&message) {
        Ok(cases) => cases,
        Err(error) => panic!("benchmark setup failed: {error}"),
    };
    let mut group = c.benchmark_group("sign+encode");
    for case in &cases {
        group.bench_function(case.name, |b| {
            b.iter(|| datagram::encode(black_box(&message), &case.keys, InnerAuth::Classic))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("decode+verify");
    for case in &cases {
        group.bench_function(case.name, |b| {
            b.iter(|| datagram::decode(black_box(&case.datagram), &case.keys))
        });
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);

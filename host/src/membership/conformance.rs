//! Conformance cases as data: recorded inputs with the exact outputs expected, replayed
//! against the machine. The cases live in `tests/fixtures/membership/*.jsonl`, one test each.
//!
//! Format, one JSON object per line. The first line is `{"config": {…}}` (durations in
//! `*_ms`, `local_uuid` in hex, `wall_start` the Unix time at `at_ms` 0). Every other line is
//! one step: `{"at_ms": N, "input": I, "expect": [O, …]}` with an optional
//! `"next_deadline_ms": M` checked after the step (`null` for none). Inputs: `"start"`,
//! `"timer"`, `"shutdown"`, `{"load_average": "…"}`, `{"received": {"medium": 0, "message":
//! F}}`, `{"send_cluster": F}`. Outputs: `{"send": F}`, `{"event": "log line"}`,
//! `{"dropped": "counter", "node": "…"}`, `{"deliver": F, "from": "…"}`. A message `F` is its
//! fields in order, `[["t", "status"], ["srcuuid", {"hex": "…"}], …]`.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::wire::FieldValue;

fn hex_bytes(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex string {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

fn message_from_json(value: &Value) -> Message {
    let mut message = Message::new();
    for field in value.as_array().expect("a message is an array of fields") {
        let name = field[0].as_str().expect("field name");
        let value = match &field[1] {
            Value::String(s) => FieldValue::String(s.as_str().into()),
            Value::Object(o) => FieldValue::Binary(hex_bytes(
                o.get("hex").and_then(Value::as_str).expect("{\"hex\": …}"),
            )),
            other => panic!("unsupported field value {other}"),
        };
        message.push(name, value);
    }
    message
}

fn message_to_json(message: &Message) -> Value {
    Value::Array(
        message
            .fields()
            .iter()
            .map(|f| match &f.value {
                FieldValue::String(s) => json!([f.name, s]),
                FieldValue::Binary(b) => {
                    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
                    json!([f.name, {"hex": hex}])
                }
                other => panic!("unsupported field value {other:?}"),
            })
            .collect(),
    )
}

fn output_to_json(output: &Output) -> Value {
    match output {
        Output::Send(message) => json!({"send": message_to_json(message)}),
        Output::Event(event) => json!({"event": event.to_string()}),
        Output::Dropped { reason, node } => json!({"dropped": reason.counter(), "node": node}),
        Output::Deliver { from, message } => {
            json!({"deliver": message_to_json(message), "from": from})
        }
    }
}

fn millis(config: &Value, key: &str) -> Duration {
    Duration::from_millis(
        config[key]
            .as_u64()
            .unwrap_or_else(|| panic!("config {key}")),
    )
}

fn config_from_json(config: &Value) -> MembershipConfig {
    let strings = |key: &str| -> Vec<String> {
        config[key]
            .as_array()
            .unwrap_or_else(|| panic!("config {key}"))
            .iter()
            .map(|v| v.as_str().expect("a name").to_string())
            .collect()
    };
    let uuid = hex_bytes(config["local_uuid"].as_str().expect("config local_uuid"));
    MembershipConfig {
        local_node: config["local_node"]
            .as_str()
            .expect("config local_node")
            .to_string(),
        local_uuid: uuid.try_into().expect("16-byte uuid"),
        nodes: strings("nodes"),
        links: strings("links"),
        keepalive: millis(config, "keepalive_ms"),
        deadtime: millis(config, "deadtime_ms"),
        warntime: millis(config, "warntime_ms"),
        initdead: millis(config, "initdead_ms"),
        max_rexmit_delay: millis(config, "max_rexmit_delay_ms"),
        hopfudge: u8::try_from(config["hopfudge"].as_u64().expect("config hopfudge"))
            .expect("hopfudge fits u8"),
        generation: config["generation"].as_u64().expect("config generation"),
        rng_seed: config["rng_seed"].as_u64().expect("config rng_seed"),
    }
}

fn input_from_json(input: &Value) -> Input {
    match input {
        Value::String(word) => match word.as_str() {
            "start" => Input::Start,
            "timer" => Input::Timer,
            "shutdown" => Input::Shutdown,
            other => panic!("unknown input {other}"),
        },
        Value::Object(o) => {
            if let Some(received) = o.get("received") {
                Input::Received {
                    medium: received["medium"].as_u64().expect("medium") as usize,
                    message: message_from_json(&received["message"]),
                }
            } else if let Some(message) = o.get("send_cluster") {
                Input::SendCluster(message_from_json(message))
            } else if let Some(line) = o.get("load_average") {
                Input::LoadAverage(line.as_str().expect("load average text").to_string())
            } else {
                panic!("unknown input {input}")
            }
        }
        other => panic!("unknown input {other}"),
    }
}

/// Replays `tests/fixtures/membership/<case>.jsonl` and fails on the first step whose
/// outputs (or next deadline) differ, showing both.
fn replay(case: &str) {
    let path = format!(
        "{}/tests/fixtures/membership/{case}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().expect("a config line");
    let header: Value = serde_json::from_str(first).expect("config line is JSON");
    let config = &header["config"];
    let wall_start = config["wall_start"].as_u64().expect("config wall_start");
    let mut machine = Membership::new(config_from_json(config));
    let mut steps = 0;
    for (number, line) in lines {
        let step: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}:{}: {e}", number + 1));
        let at_ms = step["at_ms"].as_u64().expect("at_ms");
        let now = Now {
            mono: Duration::from_millis(at_ms),
            wall_secs: wall_start + at_ms / 1000,
        };
        let outputs = machine.handle(input_from_json(&step["input"]), now);
        let actual: Vec<Value> = outputs.iter().map(output_to_json).collect();
        let expected = step["expect"].as_array().expect("expect is an array");
        assert_eq!(
            &actual,
            expected,
            "{path}:{}: outputs differ at {at_ms} ms\nactual:\n{}\nexpected:\n{}",
            number + 1,
            serde_json::to_string_pretty(&actual).unwrap_or_default(),
            serde_json::to_string_pretty(expected).unwrap_or_default()
        );
        if let Some(deadline) = step.get("next_deadline_ms") {
            let actual = machine.next_deadline().map(|d| d.as_millis() as u64);
            assert_eq!(
                actual,
                deadline.as_u64(),
                "{path}:{}: next deadline after {at_ms} ms",
                number + 1
            );
        }
        steps += 1;
    }
    assert!(steps > 0, "{path} has no steps");
}

#[test]
fn start_sends_three_status_messages() {
    replay("start_three_status_messages");
}

#[test]
fn a_duplicate_across_two_media_is_processed_once() {
    replay("duplicate_across_two_media");
}

#[test]
fn a_gap_is_requested_with_ns_rexmit_and_recovered() {
    replay("gap_and_rexmit");
}

#[test]
fn a_silent_node_is_dead_exactly_at_deadtime() {
    replay("silent_node_dead_at_deadtime");
}

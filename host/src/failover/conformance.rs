//! Conformance cases as data: recorded exchanges with a Heartbeat 3.0.6 peer, replayed
//! against the machine. The cases live in `tests/fixtures/failover/*.jsonl`, one test each;
//! the peer's messages are the ones the capture in `tests/fixtures/heartbeat-3.0.6/` holds
//! (see the README next to the cases for which are verbatim and which are adapted).
//!
//! Format, one JSON object per line. The first line is `{"config": {…}}` (`local_node`,
//! `nodes`, `groups` with `key`, `preferred`, `order` and `resources` of `name` and `monitor`
//! (`null` or `{"interval_ms", "restarts"}`), `auto_failback`, `keepalive_ms`,
//! `deadtime_ms`, `rng_seed`). Every other line is one step: `{"at_ms": N, "input": I,
//! "expect": [O, …]}` with an optional `"next_deadline_ms": M` (`null` for none). Inputs:
//! `"timer"`, `"shutdown"`, `{"standby": "all"}`, `{"takeover": "local"}`, `{"membership":
//! "communications_up"}`, `{"membership": {"node_status": {"node", "old", "new"}}}`,
//! `{"membership": {"node_restarted": {"node", "generation"}}}`, `{"membership":
//! {"returned_after_partition": "node"}}`, `{"delivered": {"from", "message": F}}`,
//! `{"operation_done": {"group", "resource", "action", "status"}}` (`status` is the OCF exit
//! code). Outputs: `{"send": F}`, `{"run": {"group", "resource", "action"}}`, `{"event":
//! "log line"}`, `"shutdown_complete"`. A message `F` is its fields in order, `[["t",
//! "resource"], ["srcuuid", {"hex": "…"}], …]`.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::wire::FieldValue;

const WALL_START: u64 = 1_795_330_974;

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

fn action_from_json(value: &Value) -> AgentAction {
    match value.as_str().expect("an action word") {
        "start" => AgentAction::Start,
        "stop" => AgentAction::Stop,
        "monitor" => AgentAction::Monitor,
        "validate-all" => AgentAction::Validate,
        other => panic!("unknown action {other}"),
    }
}

fn output_to_json(output: &Output) -> Value {
    match output {
        Output::Send(message) => json!({"send": message_to_json(message)}),
        Output::Run {
            group,
            resource,
            action,
        } => json!({"run": {"group": group, "resource": resource, "action": action.as_str()}}),
        Output::Fence { node, attempt } => json!({"fence": node, "attempt": attempt}),
        Output::Event(event) => json!({"event": event.to_string()}),
        Output::ShutdownComplete => json!("shutdown_complete"),
    }
}

fn node_status(word: &Value) -> NodeStatus {
    match word.as_str().expect("a status word") {
        "init" => NodeStatus::Init,
        "up" => NodeStatus::Up,
        "active" => NodeStatus::Active,
        "dead" => NodeStatus::Dead,
        other => panic!("unknown status {other}"),
    }
}

fn hold_set(word: &Value) -> HoldSet {
    HoldSet::from_word(word.as_str().expect("a set word")).expect("none/local/foreign/all")
}

fn membership_from_json(value: &Value) -> MembershipEvent {
    if value.as_str() == Some("communications_up") {
        return MembershipEvent::CommunicationsUp;
    }
    let text = |v: &Value| v.as_str().expect("a node name").to_string();
    if let Some(s) = value.get("node_status") {
        MembershipEvent::NodeStatus {
            node: text(&s["node"]),
            old: node_status(&s["old"]),
            new: node_status(&s["new"]),
        }
    } else if let Some(r) = value.get("node_restarted") {
        MembershipEvent::NodeRestarted {
            node: text(&r["node"]),
            generation: r["generation"].as_u64().expect("generation"),
        }
    } else if let Some(node) = value.get("returned_after_partition") {
        MembershipEvent::ReturnedAfterPartition { node: text(node) }
    } else {
        panic!("unknown membership event {value}")
    }
}

fn input_from_json(input: &Value) -> Input {
    if let Some(word) = input.as_str() {
        return match word {
            "timer" => Input::Timer,
            "shutdown" => Input::Shutdown,
            other => panic!("unknown input {other}"),
        };
    }
    if let Some(event) = input.get("membership") {
        Input::Membership(membership_from_json(event))
    } else if let Some(d) = input.get("delivered") {
        Input::Delivered {
            from: d["from"].as_str().expect("from").to_string(),
            message: message_from_json(&d["message"]),
        }
    } else if let Some(o) = input.get("operation_done") {
        let number = |key: &str| o[key].as_u64().expect("a number");
        Input::OperationDone {
            group: number("group") as usize,
            resource: number("resource") as usize,
            action: action_from_json(&o["action"]),
            status: OcfStatus::from_code(u8::try_from(number("status")).expect("an exit code")),
        }
    } else if let Some(set) = input.get("standby") {
        Input::Standby(hold_set(set))
    } else if let Some(set) = input.get("takeover") {
        Input::Takeover(hold_set(set))
    } else {
        panic!("unknown input {input}")
    }
}

fn config_from_json(config: &Value) -> FailoverConfig {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .expect("a list of names")
            .iter()
            .map(|v| v.as_str().expect("a name").to_string())
            .collect()
    };
    let millis = |key: &str| Duration::from_millis(config[key].as_u64().expect(key));
    let groups = config["groups"]
        .as_array()
        .expect("config groups")
        .iter()
        .map(|g| GroupConfig {
            key: g["key"].as_str().expect("key").to_string(),
            preferred: g["preferred"].as_str().expect("preferred").to_string(),
            order: strings(&g["order"]),
            resources: g["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .map(|r| ResourceConfig {
                    name: r["name"].as_str().expect("name").to_string(),
                    monitor: r["monitor"].as_object().map(|m| MonitorConfig {
                        interval: Duration::from_millis(
                            m["interval_ms"].as_u64().expect("interval_ms"),
                        ),
                        restarts: u32::try_from(m["restarts"].as_u64().expect("restarts"))
                            .expect("restarts fits u32"),
                    }),
                })
                .collect(),
        })
        .collect();
    let auto_failback = match config["auto_failback"].as_str().expect("auto_failback") {
        "on" => AutoFailback::On,
        "off" => AutoFailback::Off,
        "legacy" => AutoFailback::Legacy,
        other => panic!("unknown auto_failback {other}"),
    };
    FailoverConfig {
        local_node: config["local_node"]
            .as_str()
            .expect("local_node")
            .to_string(),
        nodes: strings(&config["nodes"]),
        groups,
        auto_failback,
        keepalive: millis("keepalive_ms"),
        deadtime: millis("deadtime_ms"),
        rng_seed: config["rng_seed"].as_u64().expect("rng_seed"),
        fence_device: config["fence_device"].as_str().map(str::to_string),
    }
}

/// Replays `tests/fixtures/failover/<case>.jsonl` and fails on the first step whose outputs
/// (or next deadline) differ, showing both.
fn replay(case: &str) {
    let path = format!(
        "{}/tests/fixtures/failover/{case}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().expect("a config line");
    let header: Value = serde_json::from_str(first).expect("config line is JSON");
    let mut machine = Failover::new(config_from_json(&header["config"]));
    let mut steps = 0;
    for (number, line) in lines {
        let step: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}:{}: {e}", number + 1));
        let at_ms = step["at_ms"].as_u64().expect("at_ms");
        let now = Now {
            mono: Duration::from_millis(at_ms),
            wall_secs: WALL_START + at_ms / 1000,
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
fn cold_start_next_to_heartbeat_acquires_without_the_ten_second_pause() {
    replay("heartbeat_peer_cold_start");
}

#[test]
fn heartbeat_peers_death_moves_its_group_here_and_auto_failback_returns_it() {
    replay("heartbeat_peer_death_and_failback");
}

#[test]
fn legacy_asks_a_heartbeat_peer_with_ip_request_and_starts_on_its_answer() {
    replay("heartbeat_peer_legacy_ip_request");
}

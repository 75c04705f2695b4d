//! `wasm-hostile`: a WASM resource agent that does whatever its `do` parameter says, so the
//! host's sandbox tests can watch each attempt being stopped.
//!
//! It declares every capability (so a resource granted all of them loads it) and, on any
//! operation, does one thing: `read` a `path`, run a `command` (argv split on spaces), add
//! `ip` on `nic`, `loop` forever, `allocate` without bound, `panic`, or nothing (`ok`, the
//! default; it answers `call N of this instance`). `monitor_do`, when set, is what monitor
//! does instead, so a cluster test can run a resource that starts and then misbehaves. A
//! host error comes back as `OCF_ERR_PERM` with the error's text, so a test can read what
//! the host said. In a haresources token its parameters are positional `NAME=VALUE` words
//! (`wasm-hostile::monitor_do=loop`). It exists only to be refused; nothing real should
//! load it.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vigil_sdk::api::{
    AddressRequest, Capability, Host, IpPrefix, OcfStatus, OperationOutcome, ResourceAgent,
    ResourceInstance,
};

/// Operations this instance has run: `ok` reports it, so a test can tell a kept instance
/// (the count grows) from a fresh one (it starts at 1).
static CALLS: AtomicU64 = AtomicU64::new(0);

/// The agent; every operation does what `do` says.
struct HostileAgent;

/// The outcome of a host call: what it returned, or the host's refusal.
fn answer<T>(
    result: Result<T, vigil_sdk::api::HostError>,
    ok: impl FnOnce(T) -> String,
) -> OperationOutcome {
    match result {
        Ok(value) => OperationOutcome::success(ok(value)),
        Err(error) => OperationOutcome::new(OcfStatus::ErrPerm, error.to_string()),
    }
}

impl HostileAgent {
    fn act(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.act_as(instance.param("do").unwrap_or("ok"), instance, host)
    }

    fn act_as(&self, what: &str, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let call = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let param = |name: &str| instance.param(name).unwrap_or_default().to_string();
        match what {
            "ok" => OperationOutcome::success(format!("call {call} of this instance")),
            "read" => answer(host.read_file(Path::new(&param("path"))), |bytes| {
                format!("read {} bytes", bytes.len())
            }),
            "command" => {
                let argv: Vec<String> = param("command").split(' ').map(str::to_string).collect();
                answer(
                    host.run_command(&argv, &[], Duration::from_secs(5)),
                    |output| format!("exit {:?}", output.exit_code),
                )
            }
            "add-address" => {
                let request = AddressRequest {
                    interface: param("nic"),
                    address: IpPrefix {
                        address: param("ip").parse().unwrap_or([198, 18, 0, 1].into()),
                        prefix_len: 24,
                    },
                    broadcast: None,
                    label: None,
                };
                answer(host.add_address(&request), |change| format!("{change:?}"))
            }
            "addresses" => answer(host.addresses(), |list| {
                let names: Vec<String> = list
                    .iter()
                    .map(|a| format!("{}={}", a.interface, a.address))
                    .collect();
                names.join(",")
            }),
            "loop" => {
                let mut turns = 0u64;
                loop {
                    turns = black_box(turns.wrapping_add(1));
                }
            }
            "allocate" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![0xa5; 1 << 20]));
                    black_box(&hoard);
                }
            }
            "panic" => panic!("hostile agent panics on purpose"),
            other => OperationOutcome::new(OcfStatus::ErrArgs, format!("unknown do={other}")),
        }
    }
}

impl ResourceAgent for HostileAgent {
    fn metadata(&self) -> String {
        "<?xml version=\"1.0\"?>\n<resource-agent name=\"wasm-hostile\"/>\n".into()
    }

    fn capabilities(&self) -> Vec<Capability> {
        Capability::ALL.to_vec()
    }

    fn positional_params(&self, args: &[String]) -> Result<BTreeMap<String, String>, String> {
        args.iter()
            .map(|arg| match arg.split_once('=') {
                Some((name, value)) => Ok((name.to_string(), value.to_string())),
                None => Err(format!("expected NAME=VALUE, got `{arg}`")),
            })
            .collect()
    }

    fn validate(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.act(instance, host)
    }

    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.act(instance, host)
    }

    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.act(instance, host)
    }

    fn monitor(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        match instance.param("monitor_do") {
            Some(what) => self.act_as(what, instance, host),
            None => self.act(instance, host),
        }
    }
}

#[cfg(target_arch = "wasm32")]
vigil_sdk::export_wasm_agent! {
    name: "wasm-hostile",
    description: "Test agent that tries what the sandbox must stop",
    agent: HostileAgent,
}

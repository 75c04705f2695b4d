//! The real [`Host`]: what a resource agent's capability calls do on this machine.
//!
//! Owns carrying out each capability for one resource: logging tagged with the resource,
//! addresses over rtnetlink ([`netlink`]), gratuitous ARP over a packet socket ([`arp`]),
//! commands through the one process runner (`vigil_agents::process`), and file reads. It
//! works in the network namespace of the calling thread. It must not decide whether a
//! capability is granted (the agent runner wraps it for that), shell out to `ip`,
//! `ifconfig` or `arping`, or keep state between calls.
//!
//! - [`netlink`]: link and address dumps, address add and delete.
//! - [`arp`]: gratuitous ARP and unsolicited neighbour advertisement frames.

pub mod arp;
pub mod netlink;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_agents::address::MAX_LABEL_LEN;
use vigil_agents::process::{self, AGENT_OUTPUT_LIMIT, ProcessExit, ProcessRequest, SCRIPT_PATH};
use vigil_plugin_api::{
    AddressChange, AddressRequest, CommandOutput, Host, HostError, InterfaceAddress, IpPrefix,
    LogLevel,
};

/// The host capabilities for one resource, carried out on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemHost {
    /// The resource instance every log line is tagged with (`IPaddr_198.18.0.100`).
    resource: String,
}

impl SystemHost {
    /// The host for the resource instance `resource`.
    pub fn new(resource: impl Into<String>) -> Self {
        SystemHost {
            resource: resource.into(),
        }
    }
}

/// A failed capability, naming it.
fn failed(capability: &str, reason: impl ToString) -> HostError {
    HostError::Failed {
        capability: capability.to_string(),
        reason: reason.to_string(),
    }
}

impl Host for SystemHost {
    fn log(&self, level: LogLevel, message: &str) {
        let resource = self.resource.as_str();
        match level {
            LogLevel::Debug => tracing::debug!(resource, "{message}"),
            LogLevel::Info => tracing::info!(resource, "{message}"),
            LogLevel::Warning => tracing::warn!(resource, "{message}"),
            LogLevel::Error => tracing::error!(resource, "{message}"),
        }
    }

    fn addresses(&self) -> Result<Vec<InterfaceAddress>, HostError> {
        netlink::addresses().map_err(|e| failed("addresses", e))
    }

    fn add_address(&self, request: &AddressRequest) -> Result<AddressChange, HostError> {
        if let Some(label) = &request.label {
            let prefix = format!("{}:", request.interface);
            if label.len() > MAX_LABEL_LEN || !label.starts_with(&prefix) {
                return Err(HostError::Invalid {
                    capability: "add_address".into(),
                    reason: format!(
                        "label {label:?} must start with {prefix:?} and have at most \
                         {MAX_LABEL_LEN} characters"
                    ),
                });
            }
        }
        let change = netlink::add_address(request).map_err(|e| failed("add_address", e))?;
        if change == AddressChange::Changed {
            tracing::info!(
                resource = %self.resource,
                interface = %request.interface,
                address = %request.address,
                "address added"
            );
        }
        Ok(change)
    }

    fn remove_address(
        &self,
        interface: &str,
        address: IpPrefix,
    ) -> Result<AddressChange, HostError> {
        let change =
            netlink::remove_address(interface, address).map_err(|e| failed("remove_address", e))?;
        if change == AddressChange::Changed {
            tracing::info!(
                resource = %self.resource,
                interface,
                %address,
                "address removed"
            );
        }
        Ok(change)
    }

    fn send_gratuitous_arp(
        &self,
        interface: &str,
        address: IpAddr,
        count: u32,
        interval: Duration,
    ) -> Result<(), HostError> {
        let link = netlink::link_named(interface).map_err(|e| HostError::Invalid {
            capability: "send_gratuitous_arp".into(),
            reason: e.to_string(),
        })?;
        arp::announce(&link, address, count, interval).map_err(|e| match e {
            arp::ArpError::NoEthernetAddress { .. } => HostError::Invalid {
                capability: "send_gratuitous_arp".into(),
                reason: e.to_string(),
            },
            other => failed("send_gratuitous_arp", other),
        })
    }

    fn run_command(
        &self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<CommandOutput, HostError> {
        let Some((program, args)) = argv.split_first() else {
            return Err(HostError::Invalid {
                capability: "run_command".into(),
                reason: "no program given (argv is empty)".into(),
            });
        };
        // A clean environment: the program sees a search path and what the agent passes,
        // never whatever the daemon inherited.
        let mut environment = vec![("PATH".to_string(), SCRIPT_PATH.to_string())];
        environment.extend_from_slice(env);
        let request = ProcessRequest {
            program: PathBuf::from(program),
            args: args.to_vec(),
            env: environment,
            clear_env: true,
            timeout,
            max_output: AGENT_OUTPUT_LIMIT,
        };
        let output = process::run(&request).map_err(|e| failed("run_command", e))?;
        let exit_code = match output.exit {
            ProcessExit::Code(code) => Some(code),
            ProcessExit::Signal(_) => None,
            ProcessExit::TimedOut => {
                return Err(HostError::TimedOut {
                    capability: "run_command".into(),
                    after: timeout,
                });
            }
        };
        Ok(CommandOutput {
            exit_code,
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    fn read_file(&self, path: &Path) -> Result<Vec<u8>, HostError> {
        std::fs::read(path).map_err(|e| failed("read_file", format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_command_reports_exit_code_and_output() {
        let host = SystemHost::new("test");
        let output = host
            .run_command(
                &[
                    "sh".into(),
                    "-c".into(),
                    "echo out; echo err >&2; exit 3".into(),
                ],
                &[],
                Duration::from_secs(20),
            )
            .unwrap();
        assert_eq!(output.exit_code, Some(3));
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
    }

    #[test]
    fn run_command_gives_a_clean_environment_with_what_the_agent_passes() {
        let host = SystemHost::new("test");
        let output = host
            .run_command(
                &["sh".into(), "-c".into(), "env | sort".into()],
                &[("OCF_RESKEY_ip".into(), "198.18.0.100".into())],
                Duration::from_secs(20),
            )
            .unwrap();
        let env = String::from_utf8(output.stdout).unwrap();
        assert!(env.contains("OCF_RESKEY_ip=198.18.0.100\n"), "{env}");
        assert!(env.contains(&format!("PATH={SCRIPT_PATH}\n")), "{env}");
        assert!(!env.contains("CARGO"), "{env}");
    }

    #[test]
    fn run_command_without_a_program_is_invalid() {
        let err = SystemHost::new("test")
            .run_command(&[], &[], Duration::from_secs(1))
            .unwrap_err();
        assert!(matches!(err, HostError::Invalid { .. }), "{err}");
    }

    #[test]
    fn a_command_past_its_timeout_is_reported_as_timed_out() {
        let err = SystemHost::new("test")
            .run_command(
                &["sleep".into(), "5".into()],
                &[],
                Duration::from_millis(100),
            )
            .unwrap_err();
        assert!(matches!(err, HostError::TimedOut { .. }), "{err}");
    }

    #[test]
    fn read_file_names_the_missing_file() {
        let missing = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-file");
        let err = SystemHost::new("test").read_file(&missing).unwrap_err();
        assert!(err.to_string().contains("no-such-file"), "{err}");
    }

    #[test]
    fn labels_that_linux_would_refuse_are_invalid_before_any_system_call() {
        let request = AddressRequest {
            interface: "eth0".into(),
            address: IpPrefix {
                address: "198.18.0.100".parse().unwrap(),
                prefix_len: 24,
            },
            broadcast: None,
            label: Some("eth1:vip".into()),
        };
        let err = SystemHost::new("test").add_address(&request).unwrap_err();
        assert!(matches!(err, HostError::Invalid { .. }), "{err}");
    }

    #[test]
    fn the_address_list_includes_loopback() {
        let addresses = SystemHost::new("test").addresses().unwrap();
        assert!(
            addresses
                .iter()
                .any(|a| a.interface == "lo" && a.address.address.is_loopback()),
            "{addresses:?}"
        );
    }
}

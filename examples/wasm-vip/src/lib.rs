//! `wasm-vip`: a virtual IP address as a sandboxed WASM resource agent, in the spirit of
//! Heartbeat's IPaddr and IPaddr2, written against `vigil-sdk`.
//!
//! Owns parsing its parameters (`ip`, `cidr_netmask`, `nic`, `broadcast`, `arp_count`,
//! `arp_interval`, or Heartbeat's positional `ip/bits/nic/broadcast`) and the start, stop and
//! monitor logic. Everything it does to the system goes through the `Host` the daemon hands
//! it, and the daemon checks each call against what the operator granted the resource: this
//! agent asks for `log`, `addresses` and `arp`, so a resource using it needs a grant such as
//!
//! ```yaml
//! grant: { log: true, addresses: [eth0], arp: [eth0] }
//! ```
//!
//! It must not assume anything about the host beyond the granted interfaces: without `nic`
//! it looks for an interface among the addresses it can see (only granted ones) whose
//! subnet holds the address. Build it with
//! `cargo build --manifest-path examples/Cargo.toml -p wasm-vip --target wasm32-wasip2`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use vigil_sdk::api::{
    AddressChange, AddressRequest, Capability, Host, IpPrefix, LogLevel, OcfStatus,
    OperationOutcome, ResourceAgent, ResourceInstance,
};

/// Gratuitous ARP announcements after start when `arp_count` is not set (IPaddr2's default).
const DEFAULT_ARP_COUNT: u32 = 5;

/// Time between two announcements when `arp_interval` (milliseconds) is not set.
const DEFAULT_ARP_INTERVAL: Duration = Duration::from_millis(200);

/// The OCF meta-data: what `vigil plugin test` and operators read.
const METADATA: &str = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="wasm-vip" version="0.1.0">
  <version>1.0</version>
  <longdesc lang="en">
A virtual IP address managed by a sandboxed WASM agent: start adds it to an interface and
announces it with gratuitous ARP, stop removes it, monitor checks it is configured. The
resource must be granted log, addresses and arp on the interface.
  </longdesc>
  <shortdesc lang="en">Virtual IP address (WASM example)</shortdesc>
  <parameters>
    <parameter name="ip" unique="1" required="1">
      <longdesc lang="en">The IPv4 or IPv6 address to manage.</longdesc>
      <shortdesc lang="en">IP address</shortdesc>
      <content type="string"/>
    </parameter>
    <parameter name="cidr_netmask">
      <longdesc lang="en">The prefix length; by default that of the interface's subnet.</longdesc>
      <shortdesc lang="en">Prefix length</shortdesc>
      <content type="integer"/>
    </parameter>
    <parameter name="nic">
      <longdesc lang="en">The interface; by default the granted one whose subnet holds ip.</longdesc>
      <shortdesc lang="en">Interface</shortdesc>
      <content type="string"/>
    </parameter>
    <parameter name="broadcast">
      <longdesc lang="en">The IPv4 broadcast address; derived by default.</longdesc>
      <shortdesc lang="en">Broadcast address</shortdesc>
      <content type="string"/>
    </parameter>
    <parameter name="arp_count">
      <longdesc lang="en">How many gratuitous ARP announcements follow a start.</longdesc>
      <shortdesc lang="en">ARP count</shortdesc>
      <content type="integer" default="5"/>
    </parameter>
    <parameter name="arp_interval">
      <longdesc lang="en">Milliseconds between two announcements.</longdesc>
      <shortdesc lang="en">ARP interval</shortdesc>
      <content type="integer" default="200"/>
    </parameter>
  </parameters>
  <actions>
    <action name="start" timeout="20s"/>
    <action name="stop" timeout="20s"/>
    <action name="monitor" timeout="20s" interval="10s" depth="0"/>
    <action name="validate-all" timeout="20s"/>
    <action name="meta-data" timeout="5s"/>
  </actions>
</resource-agent>
"#;

/// The agent; stateless, as every resource agent is.
#[derive(Debug, Default)]
pub struct VipAgent;

/// The parameters of one resource, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VipParams {
    /// The address to manage.
    ip: IpAddr,
    /// Its prefix length, if given.
    prefix_len: Option<u8>,
    /// Its interface, if given.
    nic: Option<String>,
    /// Its broadcast address, if given.
    broadcast: Option<IpAddr>,
    /// Announcements after start.
    arp_count: u32,
    /// Time between two announcements.
    arp_interval: Duration,
}

/// The address, its interface and prefix, resolved against what the host shows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placement {
    interface: String,
    address: IpPrefix,
}

impl VipParams {
    /// Reads and checks the instance's parameters; the error is for the operator.
    fn from_instance(instance: &ResourceInstance) -> Result<VipParams, String> {
        let ip_text = instance
            .param("ip")
            .ok_or("parameter ip is required (e.g. ip=198.18.0.100)")?;
        let ip: IpAddr = ip_text
            .parse()
            .map_err(|_| format!("ip {ip_text:?} is not an IP address"))?;
        let max_len = if ip.is_ipv4() { 32 } else { 128 };
        let prefix_len = match instance.param("cidr_netmask") {
            None => None,
            Some(text) => match text.parse::<u8>() {
                Ok(len) if (1..=max_len).contains(&len) => Some(len),
                _ => {
                    return Err(format!(
                        "cidr_netmask {text:?} is not a prefix length between 1 and {max_len}"
                    ));
                }
            },
        };
        let nic = instance.param("nic").map(str::to_string);
        if let Some(nic) = &nic
            && (nic.len() > 15 || nic.contains(['/', ':', ' ']))
        {
            return Err(format!("nic {nic:?} is not an interface name"));
        }
        let broadcast = match instance.param("broadcast") {
            None => None,
            Some(text) => Some(
                text.parse::<IpAddr>()
                    .ok()
                    .filter(|b| b.is_ipv4() && ip.is_ipv4())
                    .ok_or_else(|| format!("broadcast {text:?} is not an IPv4 address"))?,
            ),
        };
        let arp_count = match instance.param("arp_count") {
            None => DEFAULT_ARP_COUNT,
            Some(text) => text
                .parse()
                .map_err(|_| format!("arp_count {text:?} is not a count"))?,
        };
        let arp_interval = match instance.param("arp_interval") {
            None => DEFAULT_ARP_INTERVAL,
            Some(text) => Duration::from_millis(
                text.parse()
                    .map_err(|_| format!("arp_interval {text:?} is not milliseconds"))?,
            ),
        };
        Ok(VipParams {
            ip,
            prefix_len,
            nic,
            broadcast,
            arp_count,
            arp_interval,
        })
    }

    /// Where the address goes: the given interface and prefix, or those of the visible
    /// address whose subnet holds `ip` (IPaddr's rule).
    fn placement(&self, host: &dyn Host) -> Result<Placement, String> {
        if let (Some(nic), Some(prefix_len)) = (&self.nic, self.prefix_len) {
            return Ok(Placement {
                interface: nic.clone(),
                address: IpPrefix {
                    address: self.ip,
                    prefix_len,
                },
            });
        }
        let addresses = host.addresses().map_err(|e| e.to_string())?;
        let subnet = addresses.iter().find(|a| {
            self.nic.as_deref().is_none_or(|nic| a.interface == nic)
                && a.address.address != self.ip
                && same_subnet(a.address, self.ip)
        });
        match subnet {
            Some(found) => Ok(Placement {
                interface: self.nic.clone().unwrap_or_else(|| found.interface.clone()),
                address: IpPrefix {
                    address: self.ip,
                    prefix_len: self.prefix_len.unwrap_or(found.address.prefix_len),
                },
            }),
            None => Err(format!(
                "no granted interface has a subnet holding {}; set nic and cidr_netmask",
                self.ip
            )),
        }
    }
}

/// Whether `ip` lies in the subnet of `prefix`.
fn same_subnet(prefix: IpPrefix, ip: IpAddr) -> bool {
    fn masked(bits: u128, width: u32, len: u8) -> u128 {
        let len = u32::from(len).min(width);
        if len == 0 { 0 } else { bits >> (width - len) }
    }
    match (prefix.address, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            masked(u32::from(a).into(), 32, prefix.prefix_len)
                == masked(u32::from(b).into(), 32, prefix.prefix_len)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            masked(u128::from(a), 128, prefix.prefix_len)
                == masked(u128::from(b), 128, prefix.prefix_len)
        }
        _ => false,
    }
}

/// Turns a parameter problem into the OCF answer for it.
fn misconfigured(message: String) -> OperationOutcome {
    OperationOutcome::new(OcfStatus::ErrConfigured, message)
}

impl ResourceAgent for VipAgent {
    fn metadata(&self) -> String {
        METADATA.to_string()
    }

    fn capabilities(&self) -> Vec<Capability> {
        vec![
            Capability::Log,
            Capability::Addresses,
            Capability::GratuitousArp,
        ]
    }

    fn positional_params(&self, args: &[String]) -> Result<BTreeMap<String, String>, String> {
        let [spec] = args else {
            return Err(format!(
                "expected one argument ip[/bits[/nic[/broadcast]]], got {}",
                args.len()
            ));
        };
        let mut parts = spec.split('/');
        let mut params = BTreeMap::new();
        for name in ["ip", "cidr_netmask", "nic", "broadcast"] {
            match parts.next() {
                Some(value) if !value.is_empty() => {
                    params.insert(name.to_string(), value.to_string());
                }
                _ => {}
            }
        }
        if parts.next().is_some() || !params.contains_key("ip") {
            return Err(format!(
                "{spec:?} is not of the form ip[/bits[/nic[/broadcast]]]"
            ));
        }
        Ok(params)
    }

    fn validate(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        match VipParams::from_instance(instance) {
            Ok(params) => OperationOutcome::success(format!("{} is a valid address", params.ip)),
            Err(message) => misconfigured(message),
        }
    }

    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let params = match VipParams::from_instance(instance) {
            Ok(params) => params,
            Err(message) => return misconfigured(message),
        };
        let placement = match params.placement(host) {
            Ok(placement) => placement,
            Err(message) => return OperationOutcome::new(OcfStatus::ErrGeneric, message),
        };
        let request = AddressRequest {
            interface: placement.interface.clone(),
            address: placement.address,
            broadcast: params.broadcast,
            label: None,
        };
        let change = match host.add_address(&request) {
            Ok(change) => change,
            Err(error) => {
                return OperationOutcome::new(
                    OcfStatus::ErrGeneric,
                    format!("cannot add {}: {error}", placement.address),
                );
            }
        };
        if change == AddressChange::Changed && params.arp_count > 0 {
            // A lost announcement delays peers, it does not make the address unusable.
            if let Err(error) = host.send_gratuitous_arp(
                &placement.interface,
                params.ip,
                params.arp_count,
                params.arp_interval,
            ) {
                host.log(
                    LogLevel::Warning,
                    &format!("gratuitous ARP for {} failed: {error}", params.ip),
                );
            }
        }
        let what = match change {
            AddressChange::Changed => "added to",
            AddressChange::Unchanged => "already on",
        };
        let message = format!("{} {what} {}", placement.address, placement.interface);
        host.log(LogLevel::Info, &message);
        OperationOutcome::success(message)
    }

    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let params = match VipParams::from_instance(instance) {
            Ok(params) => params,
            Err(message) => return misconfigured(message),
        };
        let configured = match host.addresses() {
            Ok(addresses) => addresses,
            Err(error) => return OperationOutcome::new(OcfStatus::ErrGeneric, error.to_string()),
        };
        let present = configured.iter().filter(|a| {
            a.address.address == params.ip
                && params.nic.as_deref().is_none_or(|nic| a.interface == nic)
        });
        let mut removed = Vec::new();
        for address in present {
            match host.remove_address(&address.interface, address.address) {
                Ok(_) => removed.push(format!("{} from {}", address.address, address.interface)),
                Err(error) => {
                    return OperationOutcome::new(
                        OcfStatus::ErrGeneric,
                        format!("cannot remove {}: {error}", address.address),
                    );
                }
            }
        }
        let message = if removed.is_empty() {
            format!("{} was not configured", params.ip)
        } else {
            format!("removed {}", removed.join(", "))
        };
        host.log(LogLevel::Info, &message);
        OperationOutcome::success(message)
    }

    fn monitor(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let params = match VipParams::from_instance(instance) {
            Ok(params) => params,
            Err(message) => return misconfigured(message),
        };
        let addresses = match host.addresses() {
            Ok(addresses) => addresses,
            Err(error) => return OperationOutcome::new(OcfStatus::ErrGeneric, error.to_string()),
        };
        match addresses.iter().find(|a| {
            a.address.address == params.ip
                && params.nic.as_deref().is_none_or(|nic| a.interface == nic)
        }) {
            Some(found) => {
                OperationOutcome::success(format!("{} is on {}", found.address, found.interface))
            }
            None => OperationOutcome::new(
                OcfStatus::NotRunning,
                format!("{} is not configured", params.ip),
            ),
        }
    }
}

vigil_sdk::export_agent! {
    name: "wasm-vip",
    description: "Virtual IP address (WASM example agent, needs log, addresses and arp)",
    agent: VipAgent = VipAgent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_sdk::api::Grants;

    fn instance(params: &[(&str, &str)]) -> ResourceInstance {
        ResourceInstance {
            name: "vip".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timeout: Duration::from_secs(20),
            grants: Grants::default(),
        }
    }

    #[test]
    fn the_positional_form_is_heartbeats_ip_bits_nic() {
        let params = VipAgent
            .positional_params(&["198.18.0.100/24/eth0".to_string()])
            .unwrap();
        assert_eq!(params["ip"], "198.18.0.100");
        assert_eq!(params["cidr_netmask"], "24");
        assert_eq!(params["nic"], "eth0");
        assert!(!params.contains_key("broadcast"));
        let only_ip = VipAgent
            .positional_params(&["198.18.0.100".to_string()])
            .unwrap();
        assert_eq!(only_ip.len(), 1);
        assert!(VipAgent.positional_params(&[]).is_err());
        assert!(
            VipAgent
                .positional_params(&["1.2.3.4/24/eth0/1.2.3.255/x".to_string()])
                .is_err()
        );
    }

    #[test]
    fn parameters_are_checked_with_a_message_naming_the_bad_one() {
        let err = VipParams::from_instance(&instance(&[("ip", "300.1.1.1")])).unwrap_err();
        assert!(err.contains("300.1.1.1"), "{err}");
        let err =
            VipParams::from_instance(&instance(&[("ip", "198.18.0.100"), ("cidr_netmask", "33")]))
                .unwrap_err();
        assert!(err.contains("cidr_netmask"), "{err}");
        let ok = VipParams::from_instance(&instance(&[("ip", "198.18.0.100")])).unwrap();
        assert_eq!(ok.arp_count, DEFAULT_ARP_COUNT);
    }

    #[test]
    fn subnets_are_compared_on_the_prefix_bits_only() {
        let prefix = IpPrefix {
            address: "198.18.0.1".parse().unwrap(),
            prefix_len: 24,
        };
        assert!(same_subnet(prefix, "198.18.0.200".parse().unwrap()));
        assert!(!same_subnet(prefix, "198.18.1.1".parse().unwrap()));
        assert!(!same_subnet(prefix, "::1".parse().unwrap()));
    }
}

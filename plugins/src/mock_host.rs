//! An in-memory [`Host`] for agent tests, and the meta-data check every agent's tests run.
//!
//! Owns a pretend system: interfaces with their addresses, files, a log, the gratuitous ARPs
//! and commands an agent asked for, and failures a test injects. It mirrors the real host's
//! rules where agents depend on them (adding a present address or removing an absent one is
//! `Unchanged`; a label must start with its interface name and fit in 15 characters; IPv4
//! broadcast is derived when not given). It must never touch the real system, so a test
//! that passes here proves the agent's logic, not the kernel's.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use vigil_plugin_api::{
    AddressChange, AddressRequest, CommandOutput, Host, HostError, InterfaceAddress, IpPrefix,
    LogLevel,
};

use crate::address::{MAX_LABEL_LEN, derived_broadcast};

/// A capability of [`Host`] a test can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MockCapability {
    /// `Host::addresses`.
    Addresses,
    /// `Host::add_address`.
    AddAddress,
    /// `Host::remove_address`.
    RemoveAddress,
    /// `Host::send_gratuitous_arp`.
    GratuitousArp,
    /// `Host::run_command`.
    RunCommand,
    /// `Host::read_file`.
    ReadFile,
}

/// One `send_gratuitous_arp` call, as the agent made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedArp {
    /// The interface to announce on.
    pub interface: String,
    /// The address announced.
    pub address: IpAddr,
    /// How many announcements were asked for.
    pub count: u32,
    /// The time asked for between two of them.
    pub interval: Duration,
}

/// One `run_command` call, as the agent made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCommand {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The variables the agent set for it.
    pub env: Vec<(String, String)>,
    /// The deadline the agent gave it.
    pub timeout: Duration,
}

/// The pretend system behind a [`MockHost`].
#[derive(Debug, Default)]
struct MockSystem {
    /// Interfaces that exist, whether or not they carry addresses.
    interfaces: BTreeSet<String>,
    /// Addresses in the order they were added, as `Host::addresses` reports them.
    addresses: Vec<InterfaceAddress>,
    /// File contents by path.
    files: BTreeMap<PathBuf, Vec<u8>>,
    /// Everything the agent logged.
    logs: Vec<(LogLevel, String)>,
    /// Every gratuitous ARP request.
    arps: Vec<RecordedArp>,
    /// Every command run.
    commands: Vec<RecordedCommand>,
    /// What the next commands return; a command with no queued reply exits 0 silently.
    command_replies: VecDeque<Result<CommandOutput, HostError>>,
    /// Capabilities that fail, with the error they fail with.
    refused: BTreeMap<MockCapability, HostError>,
}

/// An in-memory host: agents run against it in unit tests, and plugin authors' tests can
/// use it the same way.
#[derive(Debug, Default)]
pub struct MockHost {
    /// Shared behind a mutex because `Host` is `Sync` and agents may call from any thread.
    system: Mutex<MockSystem>,
}

impl MockHost {
    /// A host with no interfaces, no files and nothing recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an interface without addresses (`eth1` before any address is configured).
    pub fn with_interface(self, name: &str) -> Self {
        self.lock().interfaces.insert(name.to_string());
        self
    }

    /// Adds an interface carrying `cidr` (`198.18.0.1/24`), as an operator's static address;
    /// the IPv4 broadcast is derived. Panics on a malformed `cidr`: it is test input.
    pub fn with_address(self, interface: &str, cidr: &str) -> Self {
        let address = parse_cidr(cidr);
        {
            let mut system = self.lock();
            system.interfaces.insert(interface.to_string());
            system.addresses.push(InterfaceAddress {
                interface: interface.to_string(),
                address,
                broadcast: derived_broadcast(address),
                label: None,
            });
        }
        self
    }

    /// Puts a file on the pretend system.
    pub fn with_file(self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        self.set_file(path, contents);
        self
    }

    /// Replaces a file's contents (a mount table that changed between two calls).
    pub fn set_file(&self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) {
        self.lock().files.insert(path.into(), contents.into());
    }

    /// Makes every later call to `capability` fail with `error`.
    pub fn refuse(&self, capability: MockCapability, error: HostError) {
        self.lock().refused.insert(capability, error);
    }

    /// Queues what the next `run_command` returns.
    pub fn push_command_reply(&self, reply: Result<CommandOutput, HostError>) {
        self.lock().command_replies.push_back(reply);
    }

    /// The addresses now configured.
    pub fn configured(&self) -> Vec<InterfaceAddress> {
        self.lock().addresses.clone()
    }

    /// Whether `ip` is configured on `interface`.
    pub fn has_address(&self, interface: &str, ip: IpAddr) -> bool {
        self.lock()
            .addresses
            .iter()
            .any(|a| a.interface == interface && a.address.address == ip)
    }

    /// Everything logged so far.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.lock().logs.clone()
    }

    /// Every gratuitous ARP request so far.
    pub fn arps(&self) -> Vec<RecordedArp> {
        self.lock().arps.clone()
    }

    /// Every command run so far.
    pub fn commands(&self) -> Vec<RecordedCommand> {
        self.lock().commands.clone()
    }

    fn lock(&self) -> MutexGuard<'_, MockSystem> {
        // A test that panicked while holding the lock already failed; later reads may go on.
        self.system.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check(system: &MockSystem, capability: MockCapability) -> Result<(), HostError> {
        match system.refused.get(&capability) {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }
}

/// Reads `a.b.c.d/len` or `x::y/len` in test setup.
fn parse_cidr(cidr: &str) -> IpPrefix {
    let (address, prefix_len) = cidr
        .split_once('/')
        .unwrap_or_else(|| panic!("test address {cidr:?} needs /prefix"));
    IpPrefix {
        address: address
            .parse()
            .unwrap_or_else(|e| panic!("test address {cidr:?}: {e}")),
        prefix_len: prefix_len
            .parse()
            .unwrap_or_else(|e| panic!("test address {cidr:?}: {e}")),
    }
}

impl Host for MockHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.lock().logs.push((level, message.to_string()));
    }

    fn addresses(&self) -> Result<Vec<InterfaceAddress>, HostError> {
        let system = self.lock();
        Self::check(&system, MockCapability::Addresses)?;
        Ok(system.addresses.clone())
    }

    fn add_address(&self, request: &AddressRequest) -> Result<AddressChange, HostError> {
        let mut system = self.lock();
        Self::check(&system, MockCapability::AddAddress)?;
        if !system.interfaces.contains(&request.interface) {
            return Err(HostError::Failed {
                capability: "add_address".into(),
                reason: format!("no interface named {}", request.interface),
            });
        }
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
        if system.addresses.iter().any(|a| {
            a.interface == request.interface && a.address.address == request.address.address
        }) {
            return Ok(AddressChange::Unchanged);
        }
        let broadcast = request
            .broadcast
            .or_else(|| derived_broadcast(request.address));
        system.addresses.push(InterfaceAddress {
            interface: request.interface.clone(),
            address: request.address,
            broadcast,
            label: request.label.clone(),
        });
        Ok(AddressChange::Changed)
    }

    fn remove_address(
        &self,
        interface: &str,
        address: IpPrefix,
    ) -> Result<AddressChange, HostError> {
        let mut system = self.lock();
        Self::check(&system, MockCapability::RemoveAddress)?;
        let before = system.addresses.len();
        system
            .addresses
            .retain(|a| !(a.interface == interface && a.address == address));
        Ok(if system.addresses.len() < before {
            AddressChange::Changed
        } else {
            AddressChange::Unchanged
        })
    }

    fn send_gratuitous_arp(
        &self,
        interface: &str,
        address: IpAddr,
        count: u32,
        interval: Duration,
    ) -> Result<(), HostError> {
        let mut system = self.lock();
        Self::check(&system, MockCapability::GratuitousArp)?;
        system.arps.push(RecordedArp {
            interface: interface.to_string(),
            address,
            count,
            interval,
        });
        Ok(())
    }

    fn run_command(
        &self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<CommandOutput, HostError> {
        let mut system = self.lock();
        Self::check(&system, MockCapability::RunCommand)?;
        system.commands.push(RecordedCommand {
            argv: argv.to_vec(),
            env: env.to_vec(),
            timeout,
        });
        system
            .command_replies
            .pop_front()
            .unwrap_or(Ok(CommandOutput {
                exit_code: Some(0),
                stdout: Vec::new(),
                stderr: Vec::new(),
            }))
    }

    fn read_file(&self, path: &Path) -> Result<Vec<u8>, HostError> {
        let system = self.lock();
        Self::check(&system, MockCapability::ReadFile)?;
        system
            .files
            .get(path)
            .cloned()
            .ok_or_else(|| HostError::Failed {
                capability: "read_file".into(),
                reason: format!("{}: no such file", path.display()),
            })
    }
}

/// What the meta-data check found: the agent's name and the names of its parameters and
/// actions, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataSummary {
    /// The `name` attribute of `<resource-agent>`.
    pub agent_name: String,
    /// Every `<parameter>` name.
    pub parameters: Vec<String>,
    /// Every `<action>` name.
    pub actions: Vec<String>,
}

/// Checks that `xml` is well-formed OCF meta-data (OCF RA API §10.4) and summarises it:
/// every element closed in order, attributes quoted, a `resource-agent` root with a name,
/// `version`, `longdesc` and `shortdesc` children, every parameter with a name, both
/// descriptions and a `content` type, and actions start, stop, monitor, validate-all and
/// meta-data, each with a timeout. The same check an `ocf-tester` run starts with.
pub fn check_metadata(xml: &str) -> Result<MetadataSummary, String> {
    let elements = parse_elements(xml)?;
    let root = elements
        .iter()
        .find(|e| e.depth == 0)
        .ok_or("no root element")?;
    if root.name != "resource-agent" {
        return Err(format!(
            "root element is <{}>, not <resource-agent>",
            root.name
        ));
    }
    let agent_name = root
        .attribute("name")
        .ok_or("<resource-agent> has no name attribute")?
        .to_string();
    for child in ["version", "longdesc", "shortdesc", "parameters", "actions"] {
        if !elements.iter().any(|e| e.depth == 1 && e.name == child) {
            return Err(format!("<resource-agent> has no <{child}>"));
        }
    }
    let mut parameters = Vec::new();
    for (index, parameter) in elements
        .iter()
        .enumerate()
        .filter(|(_, e)| e.name == "parameter")
    {
        let name = parameter
            .attribute("name")
            .ok_or("a <parameter> has no name")?;
        let children: Vec<&Element> = elements[index + 1..]
            .iter()
            .take_while(|e| e.depth > parameter.depth)
            .filter(|e| e.depth == parameter.depth + 1)
            .collect();
        for child in ["longdesc", "shortdesc", "content"] {
            if !children.iter().any(|e| e.name == child) {
                return Err(format!("parameter {name} has no <{child}>"));
            }
        }
        let content = children
            .iter()
            .find(|e| e.name == "content")
            .ok_or_else(|| format!("parameter {name} has no <content>"))?;
        if content.attribute("type").is_none() {
            return Err(format!("parameter {name}: <content> has no type"));
        }
        parameters.push(name.to_string());
    }
    let mut actions = Vec::new();
    for action in elements.iter().filter(|e| e.name == "action") {
        let name = action.attribute("name").ok_or("an <action> has no name")?;
        if action.attribute("timeout").is_none() {
            return Err(format!("action {name} has no timeout"));
        }
        actions.push(name.to_string());
    }
    for required in ["start", "stop", "monitor", "validate-all", "meta-data"] {
        if !actions.iter().any(|a| a == required) {
            return Err(format!("no <action name=\"{required}\">"));
        }
    }
    Ok(MetadataSummary {
        agent_name,
        parameters,
        actions,
    })
}

/// An element of the document with its nesting depth (the root is 0).
#[derive(Debug)]
struct Element {
    /// The tag name.
    name: String,
    /// How many elements enclose it.
    depth: usize,
    /// Attributes in document order, entities left as written.
    attributes: Vec<(String, String)>,
}

impl Element {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the element structure of a small XML document: declarations, doctype and comments
/// are skipped, text is checked only for stray `<`, `&` must start an entity.
fn parse_elements(xml: &str) -> Result<Vec<Element>, String> {
    let mut elements = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = xml;
    let mut roots = 0;
    while let Some(start) = rest.find('<') {
        let text = &rest[..start];
        check_text(text)?;
        if open.is_empty() && !text.trim().is_empty() {
            return Err(format!("text outside the root: {:?}", text.trim()));
        }
        rest = &rest[start..];
        if let Some(after) = rest.strip_prefix("<?") {
            let end = after.find("?>").ok_or("unterminated <? ... ?>")?;
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").ok_or("unterminated comment")?;
            rest = &after[end + 3..];
        } else if let Some(after) = rest.strip_prefix("<!") {
            let end = after.find('>').ok_or("unterminated <!...>")?;
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix("</") {
            let end = after.find('>').ok_or("unterminated end tag")?;
            let name = after[..end].trim();
            match open.pop() {
                Some(expected) if expected == name => {}
                Some(expected) => return Err(format!("</{name}> closes <{expected}>")),
                None => return Err(format!("</{name}> closes nothing")),
            }
            rest = &after[end + 1..];
        } else {
            let after = &rest[1..];
            let end = find_tag_end(after).ok_or("unterminated start tag")?;
            let mut body = &after[..end];
            let self_closing = body.ends_with('/');
            if self_closing {
                body = &body[..body.len() - 1];
            }
            let (name, attributes) = parse_tag(body)?;
            if open.is_empty() {
                roots += 1;
                if roots > 1 {
                    return Err(format!("a second root element <{name}>"));
                }
            }
            elements.push(Element {
                name: name.clone(),
                depth: open.len(),
                attributes,
            });
            if !self_closing {
                open.push(name);
            }
            rest = &after[end + 1..];
        }
    }
    check_text(rest)?;
    if !rest.trim().is_empty() {
        return Err(format!("text after the root: {:?}", rest.trim()));
    }
    if let Some(unclosed) = open.pop() {
        return Err(format!("<{unclosed}> is never closed"));
    }
    Ok(elements)
}

/// The end of a start tag: the first `>` outside quotes.
fn find_tag_end(tag: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in tag.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Splits `name a="1" b='2'` into the name and its attributes.
fn parse_tag(body: &str) -> Result<(String, Vec<(String, String)>), String> {
    let body = body.trim();
    let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
    let name = &body[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_:.".contains(c))
    {
        return Err(format!("bad element name {name:?}"));
    }
    let mut attributes = Vec::new();
    let mut rest = body[name_end..].trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("<{name}>: attribute without value in {rest:?}"))?;
        let attribute = rest[..eq].trim();
        let value_part = rest[eq + 1..].trim_start();
        let quote = value_part
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| format!("<{name}>: attribute {attribute} is not quoted"))?;
        let close = value_part[1..]
            .find(quote)
            .ok_or_else(|| format!("<{name}>: attribute {attribute} is not closed"))?;
        let value = &value_part[1..1 + close];
        check_text(value)?;
        if attributes.iter().any(|(a, _)| a == attribute) {
            return Err(format!("<{name}>: attribute {attribute} appears twice"));
        }
        attributes.push((attribute.to_string(), value.to_string()));
        rest = value_part[close + 2..].trim_start();
    }
    Ok((name.to_string(), attributes))
}

/// Text may not hold `<`, and every `&` must start one of XML's entities.
fn check_text(text: &str) -> Result<(), String> {
    if text.contains('<') {
        return Err(format!("stray '<' in {text:?}"));
    }
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        rest = &rest[amp + 1..];
        let entity_end = rest
            .find(';')
            .ok_or_else(|| format!("unterminated entity in {text:?}"))?;
        let entity = &rest[..entity_end];
        let known = matches!(entity, "lt" | "gt" | "amp" | "quot" | "apos")
            || entity
                .strip_prefix('#')
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric()));
        if !known {
            return Err(format!("unknown entity &{entity}; in {text:?}"));
        }
        rest = &rest[entity_end + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="X" version="1.0">
<version>1.0</version>
<longdesc lang="en">long &amp; detailed</longdesc>
<shortdesc lang="en">short</shortdesc>
<parameters>
<parameter name="p" unique="1">
<longdesc lang="en">l</longdesc><shortdesc lang="en">s</shortdesc>
<content type="string" default=""/>
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

    #[test]
    fn well_formed_metadata_is_summarised() {
        let summary = check_metadata(MINIMAL).unwrap();
        assert_eq!(summary.agent_name, "X");
        assert_eq!(summary.parameters, ["p"]);
        assert_eq!(
            summary.actions,
            ["start", "stop", "monitor", "validate-all", "meta-data"]
        );
    }

    #[test]
    fn metadata_defects_are_named() {
        let cases = [
            (MINIMAL.replace("</parameters>", ""), "closes"),
            (MINIMAL.replace("&amp;", "&"), "entity"),
            (MINIMAL.replace("<version>1.0</version>", ""), "<version>"),
            (
                MINIMAL.replace(r#"<action name="stop" timeout="20s"/>"#, ""),
                "stop",
            ),
            (
                MINIMAL.replace(r#"<content type="string" default=""/>"#, ""),
                "content",
            ),
            (
                MINIMAL.replace(r#"timeout="5s""#, "timeout=5s"),
                "not quoted",
            ),
            (format!("{MINIMAL}<extra/>"), "second root"),
        ];
        for (xml, expected) in cases {
            let err = check_metadata(&xml).unwrap_err();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn adding_twice_is_unchanged_and_removing_an_absent_address_is_unchanged() {
        let host = MockHost::new().with_address("eth0", "198.18.0.1/24");
        let request = AddressRequest {
            interface: "eth0".into(),
            address: parse_cidr("198.18.0.100/24"),
            broadcast: None,
            label: Some("eth0:0".into()),
        };
        assert_eq!(host.add_address(&request).unwrap(), AddressChange::Changed);
        assert_eq!(
            host.add_address(&request).unwrap(),
            AddressChange::Unchanged
        );
        let added = host.configured().pop().unwrap();
        assert_eq!(added.broadcast, Some("198.18.0.255".parse().unwrap()));
        let prefix = parse_cidr("198.18.0.100/24");
        assert_eq!(
            host.remove_address("eth0", prefix).unwrap(),
            AddressChange::Changed
        );
        assert_eq!(
            host.remove_address("eth0", prefix).unwrap(),
            AddressChange::Unchanged
        );
    }

    #[test]
    fn labels_must_carry_the_interface_name_and_fit_in_fifteen_characters() {
        let host = MockHost::new().with_interface("eth0");
        for label in ["eth1:0", "eth0:abcdefghijk"] {
            let request = AddressRequest {
                interface: "eth0".into(),
                address: parse_cidr("198.18.0.100/24"),
                broadcast: None,
                label: Some(label.into()),
            };
            assert!(matches!(
                host.add_address(&request),
                Err(HostError::Invalid { .. })
            ));
        }
    }
}

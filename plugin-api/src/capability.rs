//! Capabilities: what a sandboxed agent asks to do to the system, and what the operator grants.
//!
//! A WASM agent declares the [`Capability`] kinds it needs; the operator grants each resource
//! a [`Grants`] in the configuration, deny by default. The daemon refuses to load a resource
//! whose agent asks for a kind the resource was not granted, and checks every later call
//! against the grant's specifics (which interfaces, which programs, which paths). This module
//! only describes and checks; it does no I/O and never decides what an agent may do beyond
//! what the grant says. Built-in and native agents run with the daemon's own rights: their
//! declared capabilities are informational.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// One kind of thing an agent may ask of its [`crate::Host`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Write to the daemon's log (`Host::log`).
    Log,
    /// List, add and remove addresses on named interfaces (`Host::addresses`,
    /// `add_address`, `remove_address`).
    Addresses,
    /// Send gratuitous ARP out of named interfaces (`Host::send_gratuitous_arp`).
    GratuitousArp,
    /// Run named programs (`Host::run_command`).
    Commands,
    /// Read files under named paths (`Host::read_file`).
    ReadFiles,
}

impl Capability {
    /// Every kind, in the order listings show them.
    pub const ALL: [Capability; 5] = [
        Capability::Log,
        Capability::Addresses,
        Capability::GratuitousArp,
        Capability::Commands,
        Capability::ReadFiles,
    ];

    /// The word used in manifests, configuration (`grant:` keys) and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Addresses => "addresses",
            Capability::GratuitousArp => "arp",
            Capability::Commands => "commands",
            Capability::ReadFiles => "read",
        }
    }

    /// The kind named `word`, as [`Capability::as_str`] spells it.
    pub fn from_word(word: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == word)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the operator allows one resource's sandboxed agent to do. The default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// May write to the daemon's log.
    pub log: bool,
    /// Interfaces whose addresses it may list, add and remove.
    pub address_interfaces: BTreeSet<String>,
    /// Interfaces it may send gratuitous ARP out of.
    pub arp_interfaces: BTreeSet<String>,
    /// Programs it may run, by absolute path (`argv[0]` must be exactly one of them).
    pub commands: BTreeSet<PathBuf>,
    /// Files or directories it may read (a directory grants everything below it).
    pub read_paths: BTreeSet<PathBuf>,
}

impl Grants {
    /// Whether any use of `capability` is granted at all; what a load-time check asks.
    pub fn grants(&self, capability: Capability) -> bool {
        match capability {
            Capability::Log => self.log,
            Capability::Addresses => !self.address_interfaces.is_empty(),
            Capability::GratuitousArp => !self.arp_interfaces.is_empty(),
            Capability::Commands => !self.commands.is_empty(),
            Capability::ReadFiles => !self.read_paths.is_empty(),
        }
    }

    /// The first of `wanted` this grant does not cover, so a load can be refused naming it.
    pub fn first_missing(&self, wanted: &[Capability]) -> Option<Capability> {
        wanted.iter().copied().find(|c| !self.grants(*c))
    }

    /// Whether addresses on `interface` may be listed, added and removed.
    pub fn allows_addresses_on(&self, interface: &str) -> bool {
        self.address_interfaces.contains(interface)
    }

    /// Whether gratuitous ARP may be sent out of `interface`.
    pub fn allows_arp_on(&self, interface: &str) -> bool {
        self.arp_interfaces.contains(interface)
    }

    /// Whether `program` (`argv[0]`) may be run: exactly a granted path, never a name looked
    /// up in `PATH`.
    pub fn allows_command(&self, program: &str) -> bool {
        self.commands.contains(Path::new(program))
    }

    /// Whether `path` may be read: absolute, without `..`, and at or below a granted path.
    /// Symbolic links are the caller's to resolve before asking (the host reads the
    /// canonical path it checked).
    pub fn allows_read(&self, path: &Path) -> bool {
        let plain = path.is_absolute()
            && path
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        plain
            && self
                .read_paths
                .iter()
                .any(|granted| path.starts_with(granted))
    }

    /// Every kind this grant covers, for status and error messages.
    pub fn kinds(&self) -> Vec<Capability> {
        Capability::ALL
            .into_iter()
            .filter(|c| self.grants(*c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_granted_by_default() {
        let grants = Grants::default();
        assert_eq!(grants.kinds(), vec![]);
        assert_eq!(
            grants.first_missing(&[Capability::Log]),
            Some(Capability::Log)
        );
        assert!(!grants.allows_read(Path::new("/etc/hostname")));
    }

    #[test]
    fn reads_are_allowed_only_below_a_granted_path_and_never_through_dot_dot() {
        let grants = Grants {
            read_paths: [PathBuf::from("/proc/net")].into(),
            ..Grants::default()
        };
        assert!(grants.allows_read(Path::new("/proc/net")));
        assert!(grants.allows_read(Path::new("/proc/net/dev")));
        assert!(!grants.allows_read(Path::new("/proc/network")));
        assert!(!grants.allows_read(Path::new("/proc/net/../../etc/shadow")));
        assert!(!grants.allows_read(Path::new("proc/net/dev")));
        assert!(!grants.allows_read(Path::new("/etc/shadow")));
    }

    #[test]
    fn commands_match_the_whole_granted_path() {
        let grants = Grants {
            commands: [PathBuf::from("/bin/true")].into(),
            ..Grants::default()
        };
        assert!(grants.allows_command("/bin/true"));
        assert!(!grants.allows_command("true"));
        assert!(!grants.allows_command("/bin/true2"));
    }

    #[test]
    fn the_first_missing_kind_is_named_in_the_agents_order() {
        let grants = Grants {
            log: true,
            address_interfaces: ["eth0".to_string()].into(),
            ..Grants::default()
        };
        let wanted = [
            Capability::Log,
            Capability::Addresses,
            Capability::GratuitousArp,
            Capability::Commands,
        ];
        assert_eq!(
            grants.first_missing(&wanted),
            Some(Capability::GratuitousArp)
        );
        assert!(grants.allows_addresses_on("eth0"));
        assert!(!grants.allows_addresses_on("eth1"));
        for kind in Capability::ALL {
            assert_eq!(Capability::from_word(kind.as_str()), Some(kind));
        }
    }
}

//! The registry: every plugin the daemon knows, of every kind and origin.
//!
//! Built-in plugin crates fill it through their `register(&mut Registry)` function; the host
//! adds native dynamic and WASM plugins found in plugin directories. Listings
//! (`vigil plugins`, `stonith -L`) and configuration lookups read it. It owns no I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use thiserror::Error;

use crate::{
    MediumFactory, PluginInfo, PluginKind, PluginOrigin, ResourceAgent, StonithCode, StonithDevice,
    StonithError, StonithFactory,
};

/// A registration or lookup failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RegistryError {
    /// Two plugins of one kind claimed the same name; the first one stays.
    #[error(
        "{kind} plugin `{name}` is already registered ({existing}); refusing the one from {new}"
    )]
    Duplicate {
        kind: PluginKind,
        name: String,
        existing: String,
        new: String,
    },
    /// Configuration named a plugin nobody registered.
    #[error("no {kind} plugin named `{name}` (known: {known})")]
    Unknown {
        kind: PluginKind,
        name: String,
        known: String,
    },
}

/// Every plugin known to this process.
#[derive(Default, Clone)]
pub struct Registry {
    /// Media factories by directive name; ordered so listings are stable.
    media: BTreeMap<String, Arc<dyn MediumFactory>>,
    /// Resource agents by the name `haresources` and YAML use (`IPaddr`, `Dummy`).
    agents: BTreeMap<String, RegisteredAgent>,
    /// STONITH plugins by type or family name (`null`, `external`).
    stonith: BTreeMap<String, Arc<dyn StonithFactory>>,
}

/// A resource agent with its identity.
#[derive(Clone)]
pub struct RegisteredAgent {
    /// Kind, name, origin, version, description.
    pub info: PluginInfo,
    /// The agent; stateless, shared by every resource that uses it.
    pub agent: Arc<dyn ResourceAgent>,
}

impl Registry {
    /// An empty registry; built-in crates' `register` functions fill it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a medium plugin. A second plugin with the same name is refused so that a
    /// configuration line always means one thing.
    pub fn add_medium(&mut self, factory: Arc<dyn MediumFactory>) -> Result<(), RegistryError> {
        let name = factory.info().name.clone();
        if let Some(existing) = self.media.get(&name) {
            return Err(RegistryError::Duplicate {
                kind: PluginKind::Medium,
                name,
                existing: existing.info().origin.to_string(),
                new: factory.info().origin.to_string(),
            });
        }
        self.media.insert(name, factory);
        Ok(())
    }

    /// The medium plugin for a directive such as `ucast`.
    pub fn medium(&self, name: &str) -> Result<&Arc<dyn MediumFactory>, RegistryError> {
        self.media.get(name).ok_or_else(|| RegistryError::Unknown {
            kind: PluginKind::Medium,
            name: name.to_string(),
            known: self.media.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// Whether `name` is a medium directive; ha.cf parsing asks this for unknown words.
    pub fn has_medium(&self, name: &str) -> bool {
        self.media.contains_key(name)
    }

    /// Adds a resource agent. A second agent with the same name is refused.
    pub fn add_agent(
        &mut self,
        info: PluginInfo,
        agent: Arc<dyn ResourceAgent>,
    ) -> Result<(), RegistryError> {
        if let Some(existing) = self.agents.get(&info.name) {
            return Err(RegistryError::Duplicate {
                kind: PluginKind::ResourceAgent,
                name: info.name.clone(),
                existing: existing.info.origin.to_string(),
                new: info.origin.to_string(),
            });
        }
        self.agents
            .insert(info.name.clone(), RegisteredAgent { info, agent });
        Ok(())
    }

    /// The resource agent registered as `name`.
    pub fn agent(&self, name: &str) -> Result<&RegisteredAgent, RegistryError> {
        self.agents.get(name).ok_or_else(|| RegistryError::Unknown {
            kind: PluginKind::ResourceAgent,
            name: name.to_string(),
            known: self.agents.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// Adds a STONITH plugin. A second plugin with the same name is refused.
    pub fn add_stonith(&mut self, factory: Arc<dyn StonithFactory>) -> Result<(), RegistryError> {
        let name = factory.info().name.clone();
        if let Some(existing) = self.stonith.get(&name) {
            return Err(RegistryError::Duplicate {
                kind: PluginKind::StonithDevice,
                name,
                existing: existing.info().origin.to_string(),
                new: factory.info().origin.to_string(),
            });
        }
        self.stonith.insert(name, factory);
        Ok(())
    }

    /// Every STONITH device type, sorted, as `stonith -L` lists them (families expanded
    /// into their members).
    pub fn stonith_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.stonith.values().flat_map(|f| f.types()).collect();
        types.sort();
        types.dedup();
        types
    }

    /// The plugin providing `device_type` (`null`, or `external/ipmi` from `external`).
    pub fn stonith_plugin(&self, device_type: &str) -> Option<&Arc<dyn StonithFactory>> {
        let plugin = device_type.split_once('/').map_or(device_type, |(f, _)| f);
        self.stonith.get(plugin)
    }

    /// A new unconfigured device of `device_type`; an unknown type is `S_OOPS`, as
    /// cluster-glue's `stonith -t` reports it.
    pub fn stonith_device(
        &self,
        device_type: &str,
    ) -> Result<Box<dyn StonithDevice>, StonithError> {
        match self.stonith_plugin(device_type) {
            Some(factory) => factory.create(device_type),
            None => Err(StonithError::new(
                StonithCode::Oops,
                format!(
                    "no STONITH device type `{device_type}` (known: {})",
                    self.stonith_types().join(", ")
                ),
            )),
        }
    }

    /// Adds every plugin of `other` that is not built in: what was loaded from plugin files
    /// once, joined to built-ins set up for one node, so a component is not compiled twice.
    pub fn add_loaded_from(&mut self, other: &Registry) -> Result<(), RegistryError> {
        let loaded = |info: &PluginInfo| info.origin != PluginOrigin::BuiltIn;
        for factory in other.media.values().filter(|f| loaded(f.info())) {
            self.add_medium(Arc::clone(factory))?;
        }
        for registered in other.agents.values().filter(|a| loaded(&a.info)) {
            self.add_agent(registered.info.clone(), Arc::clone(&registered.agent))?;
        }
        for factory in other.stonith.values().filter(|f| loaded(f.info())) {
            self.add_stonith(Arc::clone(factory))?;
        }
        Ok(())
    }

    /// Every plugin, sorted by kind then name, for listings.
    pub fn list(&self) -> Vec<PluginInfo> {
        let mut all: Vec<PluginInfo> = self
            .media
            .values()
            .map(|f| f.info().clone())
            .chain(self.agents.values().map(|a| a.info.clone()))
            .chain(self.stonith.values().map(|f| f.info().clone()))
            .collect();
        all.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Medium, MediumError, MediumSpec};

    struct FakeFactory(PluginInfo);
    impl MediumFactory for FakeFactory {
        fn info(&self) -> &PluginInfo {
            &self.0
        }
        fn check(&self, _spec: &MediumSpec) -> Result<(), MediumError> {
            Ok(())
        }
        fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError> {
            Err(MediumError::bad_arguments(spec, "fake"))
        }
    }

    fn fake(name: &str, origin: PluginOrigin) -> Arc<dyn MediumFactory> {
        Arc::new(FakeFactory(PluginInfo {
            kind: PluginKind::Medium,
            name: name.into(),
            origin,
            version: "1".into(),
            description: "fake".into(),
        }))
    }

    #[test]
    fn duplicate_medium_name_is_refused_and_first_stays() {
        let mut registry = Registry::new();
        registry
            .add_medium(fake("ucast", PluginOrigin::BuiltIn))
            .unwrap();
        let err = registry
            .add_medium(fake(
                "ucast",
                PluginOrigin::Wasm {
                    path: "x.wasm".into(),
                },
            ))
            .unwrap_err();
        assert!(matches!(err, RegistryError::Duplicate { .. }));
        assert_eq!(
            registry.medium("ucast").unwrap().info().origin,
            PluginOrigin::BuiltIn
        );
    }

    #[test]
    fn unknown_medium_names_the_known_ones() {
        let mut registry = Registry::new();
        registry
            .add_medium(fake("bcast", PluginOrigin::BuiltIn))
            .unwrap();
        let err = registry.medium("serial").err().unwrap();
        assert_eq!(
            err.to_string(),
            "no medium plugin named `serial` (known: bcast)"
        );
    }
}

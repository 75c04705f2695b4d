//! `Panicking`: a native resource agent that panics where its `panic_in` parameter says
//! (a comma-separated list of actions, or `all`), to prove that a panic in a native plugin
//! fails its operation and never crosses the boundary. Its positional form always panics.
//! Actions it is not told to panic in succeed without touching anything.

use vigil_sdk::api::{AgentAction, Host, OperationOutcome, ResourceAgent, ResourceInstance};

/// The agent.
#[derive(Debug, Default)]
pub struct Panicking;

impl Panicking {
    fn act(&self, action: AgentAction, instance: &ResourceInstance) -> OperationOutcome {
        let panics = instance
            .param("panic_in")
            .unwrap_or("")
            .split(',')
            .any(|word| word.trim() == "all" || word.trim() == action.as_str());
        if panics {
            panic!("{action} panics as asked");
        }
        OperationOutcome::success(format!("{action} did not panic"))
    }
}

impl ResourceAgent for Panicking {
    fn metadata(&self) -> String {
        r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Panicking" version="1.0">
<version>1.0</version>
<longdesc lang="en">Panics in the actions named by panic_in.</longdesc>
<shortdesc lang="en">Panicking test agent</shortdesc>
<parameters>
<parameter name="panic_in" unique="0" required="0">
<longdesc lang="en">Comma-separated actions that panic, or all.</longdesc>
<shortdesc lang="en">Actions that panic</shortdesc>
<content type="string" default="" />
</parameter>
</parameters>
<actions>
<action name="start" timeout="20s" />
<action name="stop" timeout="20s" />
<action name="monitor" timeout="20s" interval="10s" />
<action name="validate-all" timeout="20s" />
<action name="meta-data" timeout="5s" />
</actions>
</resource-agent>
"#
        .to_string()
    }

    fn positional_params(
        &self,
        args: &[String],
    ) -> Result<std::collections::BTreeMap<String, String>, String> {
        panic!("positional parameters {args:?} make me panic");
    }

    fn validate(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        self.act(AgentAction::Validate, instance)
    }

    fn start(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        self.act(AgentAction::Start, instance)
    }

    fn stop(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        self.act(AgentAction::Stop, instance)
    }

    fn monitor(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        self.act(AgentAction::Monitor, instance)
    }
}

vigil_sdk::export_resource_agent! {
    name: "Panicking",
    version: env!("CARGO_PKG_VERSION"),
    description: "test agent that panics where told",
    agent: Panicking = Panicking,
}

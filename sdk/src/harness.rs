//! The conformance harness: the checks every resource agent must pass, in the spirit of
//! resource-agents' `ocf-tester`, run against any [`ResourceAgent`] and any [`Host`].
//!
//! Owns the list of checks, their order and what each demands: meta-data is well-formed XML
//! with the elements the daemon and operators rely on; `validate-all` accepts good
//! parameters and refuses bad ones; monitor reports running after start and not running after
//! stop; start and stop are idempotent. An author runs it in unit tests with [`MockHost`]; the
//! daemon's `vigil plugin test` runs the same checks on a real host, for an agent of any
//! origin. It decides nothing about a cluster and keeps no state between runs; the agent
//! acts on whatever host it is given, so on a real host it really starts and stops the
//! resource, as `ocf-tester` does.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use vigil_plugin_api::{
    AgentAction, Grants, Host, OcfStatus, OperationOutcome, ResourceAgent, ResourceInstance,
};

pub use vigil_agents::mock_host::{MockCapability, MockHost};

/// How to exercise an agent.
#[derive(Debug, Clone)]
pub struct Conformance {
    /// `OCF_RESOURCE_INSTANCE` for the runs.
    pub instance_name: String,
    /// Parameters that must work (`ip`, `nic`, …).
    pub params: BTreeMap<String, String>,
    /// Parameter sets `validate-all` must refuse, beyond leaving out a required parameter
    /// (which is always tried).
    pub bad_params: Vec<BTreeMap<String, String>>,
    /// Each operation's timeout.
    pub timeout: Duration,
    /// What a sandboxed agent is granted for the runs.
    pub grants: Grants,
}

impl Conformance {
    /// Checks with `params` and nothing else set: a 20 s timeout, no bad sets, no grants.
    pub fn new(params: BTreeMap<String, String>) -> Self {
        Self {
            instance_name: "conformance".to_string(),
            params,
            bad_params: Vec::new(),
            timeout: Duration::from_secs(20),
            grants: Grants::default(),
        }
    }

    fn instance(&self, params: BTreeMap<String, String>) -> ResourceInstance {
        ResourceInstance {
            name: self.instance_name.clone(),
            params,
            timeout: self.timeout,
            grants: self.grants.clone(),
        }
    }
}

/// What one check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The agent did what the check demands.
    Passed,
    /// It did not; the text says what it did instead.
    Failed(String),
    /// The check could not apply (no required parameter to leave out and no bad set given).
    Skipped(String),
}

/// One check and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What is demanded, as a sentence (`start then monitor is running`).
    pub name: &'static str,
    /// What happened.
    pub verdict: Verdict,
}

/// Every check of one run, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The checks in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether no check failed (skipped ones do not fail a run).
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The failed checks, for assertions and summaries.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Failed(_)))
    }

    /// The verdict of the check named `name`, for tests that seed one mistake.
    pub fn verdict(&self, name: &str) -> Option<&Verdict> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.verdict)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            match &check.verdict {
                Verdict::Passed => writeln!(f, "PASS  {}", check.name)?,
                Verdict::Failed(why) => writeln!(f, "FAIL  {}: {why}", check.name)?,
                Verdict::Skipped(why) => writeln!(f, "SKIP  {}: {why}", check.name)?,
            }
        }
        let failed = self.failures().count();
        if failed == 0 {
            write!(f, "{} checks, all passed", self.checks.len())
        } else {
            write!(f, "{} checks, {failed} failed", self.checks.len())
        }
    }
}

/// The names of the checks, so tests and tools can refer to one.
pub mod checks {
    /// The meta-data check.
    pub const METADATA: &str = "meta-data is valid XML with the required elements";
    /// Every required parameter is given.
    pub const REQUIRED_GIVEN: &str = "every required parameter is given";
    /// Validate with good parameters.
    pub const VALIDATE_ACCEPTS: &str = "validate-all accepts the given parameters";
    /// Validate with bad parameters.
    pub const VALIDATE_REJECTS: &str = "validate-all rejects bad parameters";
    /// Monitor before anything else.
    pub const MONITOR_BEFORE: &str = "monitor before start answers running or not running";
    /// Start.
    pub const START: &str = "start succeeds";
    /// Monitor after start.
    pub const RUNNING_AFTER_START: &str = "start then monitor is running";
    /// A second start.
    pub const START_IDEMPOTENT: &str = "start is idempotent";
    /// Stop.
    pub const STOP: &str = "stop succeeds";
    /// Monitor after stop.
    pub const STOPPED_AFTER_STOP: &str = "stop then monitor is not running";
    /// A second stop.
    pub const STOP_IDEMPOTENT: &str = "stop is idempotent";
}

/// The actions an agent's meta-data must list: what the daemon calls, and what operators'
/// tools ask for.
const REQUIRED_ACTIONS: [&str; 5] = ["start", "stop", "monitor", "meta-data", "validate-all"];

/// Runs every check on `agent` through `host`, in `ocf-tester`'s order. The resource is left
/// stopped when the agent behaves.
pub fn check_agent(
    agent: &dyn ResourceAgent,
    conformance: &Conformance,
    host: &dyn Host,
) -> Report {
    let mut checks = Vec::new();
    let mut record = |name: &'static str, verdict: Verdict| checks.push(Check { name, verdict });

    let metadata = parse_metadata(&agent.metadata());
    let required: Vec<String> = match &metadata {
        Ok(meta) => {
            record(checks::METADATA, Verdict::Passed);
            meta.required_params.clone()
        }
        Err(why) => {
            record(checks::METADATA, Verdict::Failed(why.clone()));
            Vec::new()
        }
    };
    let missing: Vec<&str> = required
        .iter()
        .filter(|name| !conformance.params.contains_key(*name))
        .map(String::as_str)
        .collect();
    record(
        checks::REQUIRED_GIVEN,
        if missing.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Failed(format!(
                "the meta-data marks {} required; give {} to run the checks",
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" }
            ))
        },
    );

    let good = conformance.instance(conformance.params.clone());
    record(
        checks::VALIDATE_ACCEPTS,
        expect(agent.validate(&good, host), &[OcfStatus::Success]),
    );

    let mut bad_sets: Vec<(String, BTreeMap<String, String>)> = required
        .iter()
        .map(|name| {
            let mut params = conformance.params.clone();
            params.remove(name);
            (format!("without required `{name}`"), params)
        })
        .collect();
    bad_sets.extend(
        conformance
            .bad_params
            .iter()
            .map(|params| (format!("with {}", describe(params)), params.clone())),
    );
    let rejects = if bad_sets.is_empty() {
        Verdict::Skipped(
            "the meta-data marks no parameter required and no bad parameters were given"
                .to_string(),
        )
    } else {
        bad_sets
            .iter()
            .find_map(|(what, params)| {
                let outcome = agent.validate(&conformance.instance(params.clone()), host);
                (outcome.status == OcfStatus::Success).then(|| {
                    format!(
                        "validate-all {what} returned {} ({})",
                        outcome.status, outcome.message
                    )
                })
            })
            .map_or(Verdict::Passed, Verdict::Failed)
    };
    record(checks::VALIDATE_REJECTS, rejects);

    let run = |action: AgentAction| agent.run(action, &good, host);
    let running_or_not = [OcfStatus::Success, OcfStatus::NotRunning];
    record(
        checks::MONITOR_BEFORE,
        expect(run(AgentAction::Monitor), &running_or_not),
    );
    record(
        checks::START,
        expect(run(AgentAction::Start), &[OcfStatus::Success]),
    );
    record(
        checks::RUNNING_AFTER_START,
        expect(run(AgentAction::Monitor), &[OcfStatus::Success]),
    );
    record(
        checks::START_IDEMPOTENT,
        expect(run(AgentAction::Start), &[OcfStatus::Success]),
    );
    record(
        checks::STOP,
        expect(run(AgentAction::Stop), &[OcfStatus::Success]),
    );
    record(
        checks::STOPPED_AFTER_STOP,
        expect(run(AgentAction::Monitor), &[OcfStatus::NotRunning]),
    );
    // A second stop must succeed and leave the resource stopped.
    let second_stop = match expect(run(AgentAction::Stop), &[OcfStatus::Success]) {
        Verdict::Passed => match expect(run(AgentAction::Monitor), &[OcfStatus::NotRunning]) {
            Verdict::Failed(why) => Verdict::Failed(format!("after a second stop, monitor {why}")),
            other => other,
        },
        failed => failed,
    };
    record(checks::STOP_IDEMPOTENT, second_stop);
    Report { checks }
}

/// Passed if the outcome's status is one of `wanted`.
fn expect(outcome: OperationOutcome, wanted: &[OcfStatus]) -> Verdict {
    if wanted.contains(&outcome.status) {
        Verdict::Passed
    } else {
        let names: Vec<String> = wanted.iter().map(ToString::to_string).collect();
        Verdict::Failed(format!(
            "returned {} ({}), expected {}",
            outcome.status,
            outcome.message,
            names.join(" or ")
        ))
    }
}

/// `a=1, b=2` for messages.
fn describe(params: &BTreeMap<String, String>) -> String {
    if params.is_empty() {
        return "no parameters".to_string();
    }
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the checks need from meta-data.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Metadata {
    /// Parameters marked `required="1"`.
    required_params: Vec<String>,
}

/// Parses OCF meta-data (RA API §10.4): a `resource-agent` root with a `name`, a
/// `parameters` element whose `parameter`s have names, and an `actions` element listing at
/// least [`REQUIRED_ACTIONS`] (`status` stands in for `monitor`, as in LSB-era agents).
fn parse_metadata(xml: &str) -> Result<Metadata, String> {
    // OCF meta-data starts with `<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">`.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let document = roxmltree::Document::parse_with_options(xml, options)
        .map_err(|e| format!("not well-formed XML: {e}"))?;
    let root = document.root_element();
    if root.tag_name().name() != "resource-agent" {
        return Err(format!(
            "the root element is <{}>, expected <resource-agent>",
            root.tag_name().name()
        ));
    }
    if root.attribute("name").is_none_or(str::is_empty) {
        return Err("<resource-agent> has no name attribute".to_string());
    }
    let child = |name: &str| root.children().find(|n| n.has_tag_name(name));
    let parameters = child("parameters").ok_or("<resource-agent> has no <parameters> element")?;
    let mut required_params = Vec::new();
    for parameter in parameters
        .children()
        .filter(|n| n.has_tag_name("parameter"))
    {
        let name = parameter
            .attribute("name")
            .filter(|n| !n.is_empty())
            .ok_or("a <parameter> has no name attribute")?;
        if parameter.attribute("required") == Some("1") {
            required_params.push(name.to_string());
        }
    }
    let actions = child("actions").ok_or("<resource-agent> has no <actions> element")?;
    let listed: Vec<&str> = actions
        .children()
        .filter(|n| n.has_tag_name("action"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    let missing: Vec<&str> = REQUIRED_ACTIONS
        .into_iter()
        .filter(|action| {
            let listed_as_status = *action == "monitor" && listed.contains(&"status");
            !listed.contains(action) && !listed_as_status
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "<actions> does not list {} (it lists: {})",
            missing.join(", "),
            listed.join(", ")
        ));
    }
    Ok(Metadata { required_params })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Mistakes a test agent can be seeded with, one per check.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mistake {
        None,
        MalformedMetadata,
        MetadataWithoutMonitor,
        ValidateAcceptsAnything,
        StartDoesNotStart,
        SecondStartFails,
        StopDoesNotStop,
        SecondStopFails,
        MonitorFailsBeforeStart,
    }

    /// A state-in-memory agent with one required parameter, `name`.
    struct Seeded {
        mistake: Mistake,
        running: Mutex<bool>,
    }

    impl Seeded {
        fn new(mistake: Mistake) -> Self {
            Self {
                mistake,
                running: Mutex::new(false),
            }
        }
        fn running(&self) -> bool {
            *self.running.lock().unwrap()
        }
        fn set(&self, running: bool) {
            *self.running.lock().unwrap() = running;
        }
    }

    impl ResourceAgent for Seeded {
        fn metadata(&self) -> String {
            let monitor = if self.mistake == Mistake::MetadataWithoutMonitor {
                ""
            } else {
                r#"<action name="monitor" timeout="20s" interval="10s"/>"#
            };
            let close = if self.mistake == Mistake::MalformedMetadata {
                ""
            } else {
                "</resource-agent>"
            };
            format!(
                r#"<?xml version="1.0"?>
<resource-agent name="seeded" version="1.0">
  <version>1.0</version>
  <parameters>
    <parameter name="name" required="1" unique="1"><content type="string"/></parameter>
    <parameter name="colour"><content type="string" default="blue"/></parameter>
  </parameters>
  <actions>
    <action name="start" timeout="20s"/>
    <action name="stop" timeout="20s"/>
    {monitor}
    <action name="meta-data" timeout="5s"/>
    <action name="validate-all" timeout="5s"/>
  </actions>
{close}"#
            )
        }

        fn validate(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
            if self.mistake != Mistake::ValidateAcceptsAnything {
                if instance.param("name").is_none() {
                    return OperationOutcome::new(OcfStatus::ErrConfigured, "name is required");
                }
                if instance
                    .param("colour")
                    .is_some_and(|c| c != "blue" && c != "red")
                {
                    return OperationOutcome::new(OcfStatus::ErrConfigured, "bad colour");
                }
            }
            OperationOutcome::success("ok")
        }

        fn start(&self, _instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
            if self.mistake == Mistake::SecondStartFails && self.running() {
                return OperationOutcome::new(OcfStatus::ErrGeneric, "already running");
            }
            if self.mistake != Mistake::StartDoesNotStart {
                self.set(true);
            }
            OperationOutcome::success("started")
        }

        fn stop(&self, _instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
            if self.mistake == Mistake::SecondStopFails && !self.running() {
                return OperationOutcome::new(OcfStatus::ErrGeneric, "not running");
            }
            if self.mistake != Mistake::StopDoesNotStop {
                self.set(false);
            }
            OperationOutcome::success("stopped")
        }

        fn monitor(&self, _instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
            if self.mistake == Mistake::MonitorFailsBeforeStart && !self.running() {
                return OperationOutcome::new(OcfStatus::ErrGeneric, "confused");
            }
            if self.running() {
                OperationOutcome::success("running")
            } else {
                OperationOutcome::new(OcfStatus::NotRunning, "stopped")
            }
        }
    }

    fn conformance() -> Conformance {
        let mut conformance = Conformance::new([("name".to_string(), "x".to_string())].into());
        conformance.bad_params.push(
            [
                ("name".into(), "x".into()),
                ("colour".into(), "plaid".into()),
            ]
            .into(),
        );
        conformance
    }

    fn run(mistake: Mistake) -> Report {
        check_agent(&Seeded::new(mistake), &conformance(), &MockHost::new())
    }

    #[test]
    fn a_correct_agent_passes_every_check() {
        let report = run(Mistake::None);
        assert!(report.passed(), "{report}");
        assert_eq!(report.checks.len(), 11);
        assert!(report.to_string().ends_with("11 checks, all passed"));
    }

    #[test]
    fn each_seeded_mistake_fails_exactly_its_check() {
        for (mistake, check) in [
            (Mistake::MalformedMetadata, checks::METADATA),
            (Mistake::MetadataWithoutMonitor, checks::METADATA),
            (Mistake::ValidateAcceptsAnything, checks::VALIDATE_REJECTS),
            (Mistake::StartDoesNotStart, checks::RUNNING_AFTER_START),
            (Mistake::SecondStartFails, checks::START_IDEMPOTENT),
            (Mistake::StopDoesNotStop, checks::STOPPED_AFTER_STOP),
            (Mistake::SecondStopFails, checks::STOP_IDEMPOTENT),
            (Mistake::MonitorFailsBeforeStart, checks::MONITOR_BEFORE),
        ] {
            let report = run(mistake);
            assert!(
                matches!(report.verdict(check), Some(Verdict::Failed(_))),
                "{mistake:?} should fail `{check}`:\n{report}"
            );
        }
    }

    #[test]
    fn failures_say_what_the_agent_did() {
        let report = run(Mistake::StopDoesNotStop);
        assert_eq!(
            report.verdict(checks::STOPPED_AFTER_STOP),
            Some(&Verdict::Failed(
                "returned OCF_SUCCESS (0) (running), expected OCF_NOT_RUNNING (7)".to_string()
            ))
        );
        let report = run(Mistake::MetadataWithoutMonitor);
        let Some(Verdict::Failed(why)) = report.verdict(checks::METADATA) else {
            panic!("{report}");
        };
        assert!(why.starts_with("<actions> does not list monitor"), "{why}");
    }

    #[test]
    fn a_missing_required_parameter_is_named() {
        let report = check_agent(
            &Seeded::new(Mistake::None),
            &Conformance::new(BTreeMap::new()),
            &MockHost::new(),
        );
        assert_eq!(
            report.verdict(checks::REQUIRED_GIVEN),
            Some(&Verdict::Failed(
                "the meta-data marks name required; give it to run the checks".to_string()
            ))
        );
    }
}

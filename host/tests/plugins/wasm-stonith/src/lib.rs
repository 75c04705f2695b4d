//! `wasm-stonith`: a WASM STONITH device of type `wasm-null`, shaped like cluster-glue's
//! `null` device, so the host's tests can drive the `stonith-device` world end to end.
//!
//! Its one parameter is `hostlist` (hosts separated by blanks or commas, lower-cased). Once
//! configured it reports itself working, lists its hosts, and "resets" a listed host by
//! logging `Host wasm-null-reset: HOST` and succeeding, for any request kind; a host not in
//! the list is `S_BADHOST`. Resetting the host named `panic` panics instead, whether listed
//! or not, so a test can watch the daemon discard the instance and reconfigure the device on
//! a fresh one. It resets nothing real; nothing but the tests should load it.

use vigil_sdk::api::{DeviceInfo, ResetRequest, StonithCode, StonithDevice, StonithError};

/// The device type, as `stonith -t` and configuration name it.
const TYPE: &str = "wasm-null";

/// The parameter naming the hosts it pretends to reset.
const HOSTLIST: &str = "hostlist";

/// Its short identity, the start of its messages (cluster-glue's `null` says
/// `NULL STONITH device`).
const DEVICE_ID: &str = "WASM NULL STONITH device";

/// What `stonith -h` says about it.
const DESCRIPTION: &str = "Dummy (do-nothing) STONITH device in a WASM sandbox\nFOR TESTING ONLY!";

/// Where to read about the device family it imitates.
const URL: &str = "https://github.com/ClusterLabs/cluster-glue";

/// The `<parameters>` block `stonith -m` prints, as cluster-glue's `null` gives it.
const PARAMETERS_XML: &str = "<parameters><parameter name=\"hostlist\" unique=\"0\" required=\"1\"><content type=\"string\" />\n<shortdesc lang=\"en\">\nHostlist</shortdesc>\n<longdesc lang=\"en\">\nThe list of hosts that the STONITH device controls</longdesc>\n</parameter>\n</parameters>";

/// The host whose reset panics.
const PANIC_HOST: &str = "panic";

/// What separates host names in a host list (cluster-glue's `StringToHostList`).
const HOST_DELIMITERS: &[char] = &[' ', '\t', '\n', '\x0c', '\r', ','];

/// A `wasm-null` device.
#[derive(Debug, Default)]
struct NullDevice {
    /// The hosts it pretends to reset, lower case; `None` until configured.
    hosts: Option<Vec<String>>,
}

impl NullDevice {
    fn configured_hosts(&self) -> Result<&[String], StonithError> {
        self.hosts.as_deref().ok_or_else(|| {
            StonithError::new(
                StonithCode::Invalid,
                format!("{DEVICE_ID} is not configured yet"),
            )
        })
    }
}

impl StonithDevice for NullDevice {
    fn config_names(&self) -> Vec<String> {
        vec![HOSTLIST.to_string()]
    }

    fn configure(&mut self, params: &[(String, String)]) -> Result<(), StonithError> {
        let Some((_, text)) = params.iter().find(|(name, _)| name == HOSTLIST) else {
            return Err(StonithError::new(
                StonithCode::Invalid,
                format!("{DEVICE_ID}: missing parameter `{HOSTLIST}`"),
            ));
        };
        let hosts: Vec<String> = text
            .split(HOST_DELIMITERS)
            .filter(|name| !name.is_empty())
            .map(str::to_lowercase)
            .collect();
        if hosts.is_empty() {
            return Err(StonithError::new(
                StonithCode::BadConfig,
                format!("{DEVICE_ID}: `{HOSTLIST}` names no host"),
            ));
        }
        self.hosts = Some(hosts);
        Ok(())
    }

    fn status(&mut self) -> Result<(), StonithError> {
        self.configured_hosts().map(|_| ())
    }

    fn hosts(&mut self) -> Result<Vec<String>, StonithError> {
        self.configured_hosts().map(<[String]>::to_vec)
    }

    fn reset(&mut self, request: ResetRequest, host: &str) -> Result<(), StonithError> {
        let host = host.to_lowercase();
        if host == PANIC_HOST {
            panic!("{DEVICE_ID} panics on purpose resetting `{host}`");
        }
        if !self.configured_hosts()?.contains(&host) {
            return Err(StonithError::new(
                StonithCode::BadHost,
                format!("{DEVICE_ID}: host `{host}` is not in its {HOSTLIST}"),
            ));
        }
        log_reset(request, &host);
        Ok(())
    }

    fn info(&mut self, what: DeviceInfo) -> Option<String> {
        match what {
            DeviceInfo::DeviceId => Some(DEVICE_ID.to_string()),
            DeviceInfo::DeviceName => self.hosts.as_ref().map(|hosts| hosts.join(" ")),
            DeviceInfo::Description => Some(DESCRIPTION.to_string()),
            DeviceInfo::Url => Some(URL.to_string()),
            DeviceInfo::ConfigXml => Some(PARAMETERS_XML.to_string()),
        }
    }
}

/// Logs the pretended reset through the daemon, as cluster-glue's `null` logs it.
#[cfg(target_arch = "wasm32")]
fn log_reset(request: ResetRequest, host: &str) {
    use vigil_sdk::api::{Host, LogLevel};
    vigil_sdk::wasm::host().log(
        LogLevel::Info,
        &format!("Host {TYPE}-reset: {host} ({request})"),
    );
}

/// Outside WASM (`cargo check` on the build machine) there is no daemon to log to.
#[cfg(not(target_arch = "wasm32"))]
fn log_reset(_request: ResetRequest, _host: &str) {}

vigil_sdk::export_stonith! {
    name: TYPE,
    description: "Test device like cluster-glue's null; resetting `panic` panics",
    device: NullDevice::default(),
}

//! `stonith`: cluster-glue's STONITH tool, answered by the `vigil` binary under that name and
//! as `vigil stonith`, with the same options, output, messages and exit codes (spec §7.3 and
//! the captured outputs), so that scripts and operators that drive it keep working.
//!
//! It lists the registry's device types (`-L`), describes a type (`-h`, `-n`, `-m`),
//! configures a device from `-p`, `-F`, `-E` or `name=value` arguments, and asks it for its
//! status (`-S`), its hosts (`-l`) or a reset (`-T reset|on|off NODE`), `-c` times. The exit
//! status is the `S_*` code of the last operation (an unknown type is `S_OOPS`, 8).
//!
//! Messages are cluster-glue's: the tool's and the devices' log lines (see
//! `vigil_stonith::device_log`) are printed as `LEVEL: text` on stderr when stdin is a
//! terminal and sent to syslog otherwise, exactly when cluster-glue's tool does the same. It
//! holds no device logic: the devices are the registry's.

use std::ffi::CString;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use vigil_plugin_api::{
    DeviceInfo, Registry, ResetRequest, StonithCode, StonithDevice, positional_params,
};
use vigil_stonith::device_log::{self, SCRIPT_STDERR_TARGET, SEVERITY_FIELD, Severity};

use super::getopt::{self, Item};

/// getopt's option string of cluster-glue's `stonith`.
const OPTIONS: &str = "c:F:p:t:T:EsnSlLmvhVd";

/// The most `name=value` arguments cluster-glue accepts.
const MAX_NAME_VALUE_ARGS: usize = 49;

/// Printed by `-m`: cluster-glue's meta-data template around a device's descriptions and
/// parameters.
const META_TEMPLATE_HEAD: &str =
    "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n";
const META_TEMPLATE_TAIL: &str = "<actions>\n<action name=\"start\"   timeout=\"20\" />\n<action name=\"stop\"    timeout=\"15\" />\n<action name=\"status\"  timeout=\"20\" />\n<action name=\"monitor\" timeout=\"20\" interval=\"3600\" />\n<action name=\"meta-data\"  timeout=\"15\" />\n</actions>\n<special tag=\"heartbeat\">\n<version>2.0</version>\n</special>\n</resource-agent>\n";

/// What `-m` prints where a device has no text of that kind.
const NO_VALUE: &str = "<!-- no value -->";

/// Where the device parameters come from (at most one source).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ParamSource {
    /// `-p STRING`: positional parameters.
    Positional(String),
    /// `-F FILE`: positional parameters on the file's first line that is not a comment.
    File(String),
    /// `-E`: environment variables named after the config names.
    Environment,
}

/// The command line, read.
#[derive(Debug, Default)]
struct Invocation {
    device_type: Option<String>,
    param_sources: Vec<ParamSource>,
    request: Option<ResetRequest>,
    count: u32,
    silent: bool,
    status: bool,
    list_hosts: bool,
    list_types: bool,
    list_names: bool,
    metadata: bool,
    help: bool,
    debug: bool,
    errors: u32,
    named: Vec<(String, String)>,
    node: Option<String>,
}

/// Runs the tool; `program` names it in usage and messages (`stonith`, `vigil stonith`).
pub fn main(program: &str, args: &[String]) -> ExitCode {
    let code = run(program, args);
    let _ = std::io::stdout().flush();
    ExitCode::from((code & 0xff) as u8)
}

fn run(program: &str, args: &[String]) -> i32 {
    let parsed = getopt::parse(program, OPTIONS, args);
    let mut inv = Invocation {
        count: 1,
        ..Invocation::default()
    };
    for item in parsed.items {
        let (letter, value) = match item {
            Item::Error(message) => {
                eprintln!("{message}");
                inv.errors += 1;
                continue;
            }
            Item::Option(letter, value) => (letter, value.unwrap_or_default()),
        };
        match letter {
            'c' => match c_atoi(&value) {
                count if count >= 1 => inv.count = count as u32,
                _ => {
                    eprintln!("bad count [{value}]");
                    return usage(program, 1);
                }
            },
            'd' => inv.debug = true,
            'F' => inv.param_sources.push(ParamSource::File(value)),
            'E' => inv.param_sources.push(ParamSource::Environment),
            'h' => inv.help = true,
            'm' => inv.metadata = true,
            'l' => inv.list_hosts = true,
            'L' => inv.list_types = true,
            'p' => inv.param_sources.push(ParamSource::Positional(value)),
            's' => inv.silent = true,
            'S' => inv.status = true,
            't' => inv.device_type = Some(value),
            'T' => match ResetRequest::from_word(&value) {
                Some(request) => inv.request = Some(request),
                None => {
                    eprintln!("bad reset type [{value}]");
                    return usage(program, 1);
                }
            },
            'n' => inv.list_names = true,
            'V' => {
                println!("stonith: vigil {}", env!("CARGO_PKG_VERSION"));
                return 0;
            }
            // 'v': cluster-glue accepts it and prints nothing more.
            _ => {}
        }
    }
    init_logging(inv.debug);

    let registry = crate::registry::load().registry;
    if inv.help && inv.errors == 0 {
        return usage_with_help(program, &registry, inv.device_type.as_deref());
    }
    // Only one source of parameters: cluster-glue remembers the last -p and -F, and refuses
    // any two different kinds.
    let source = match distinct_source(&inv.param_sources) {
        Ok(source) => source,
        Err(()) => {
            eprintln!("Please use just one of -F, -p, and -E options");
            return usage(program, 1);
        }
    };

    let mut operands = parsed.operands.into_iter().peekable();
    while let Some((name, value)) = operands.peek().and_then(|arg| arg.split_once('=')) {
        if source.is_some() {
            eprintln!("Cannot mix name=value and -p, -F, or -E style arguments");
            return usage(program, 1);
        }
        if inv.named.len() >= MAX_NAME_VALUE_ARGS {
            eprintln!("Too many name=value style arguments");
            return 1;
        }
        inv.named.push((name.to_string(), value.to_string()));
        operands.next();
    }
    let rest: Vec<String> = operands.collect();
    let listing = inv.status || inv.list_hosts || inv.list_types || inv.list_names || inv.metadata;
    if !(rest.len() == 1 || (rest.is_empty() && listing)) {
        inv.errors += 1;
    }
    if inv.errors > 0 {
        return usage(program, 1);
    }
    inv.node = rest.into_iter().next();

    if inv.list_types {
        for device_type in registry.stonith_types() {
            println!("{device_type}");
        }
        return 0;
    }
    let Some(device_type) = inv.device_type.clone() else {
        device_log::log(Severity::Error, "Must specify device type (-t option)");
        return usage(program, 1);
    };
    let mut device = match registry.stonith_device(&device_type) {
        Ok(device) => device,
        Err(_) => {
            device_log::log(
                Severity::Error,
                &format!("Invalid device type: '{device_type}'"),
            );
            return StonithCode::Oops.number();
        }
    };
    if !inv.list_names
        && !inv.metadata
        && source.is_none()
        && inv.named.is_empty()
        && !device.config_names().is_empty()
    {
        eprintln!(
            "Must specify either -p option, -F option, -E option, or name=value style arguments"
        );
        return usage(program, 1);
    }
    if inv.list_names {
        let mut line = String::new();
        for name in device.config_names() {
            let _ = write!(line, "{name}  ");
        }
        println!("{line}");
        return 0;
    }
    if inv.metadata {
        print_metadata(device.as_mut(), &device_type);
        return 0;
    }
    if let Some(code) = configure(device.as_mut(), &device_type, source.as_ref(), &inv.named) {
        return code;
    }

    let mut rc = 0;
    for _ in 0..inv.count {
        rc = 0;
        if inv.status {
            rc = code_of(device.status());
            if !inv.silent {
                if rc == 0 {
                    device_log::log(Severity::Info, &format!("{device_type} device OK."));
                } else {
                    device_log::log(
                        Severity::Error,
                        &format!("{device_type} device not accessible."),
                    );
                }
            }
        }
        if inv.list_hosts {
            match device.hosts() {
                Ok(hosts) => {
                    for host in hosts {
                        println!("{host}");
                    }
                }
                Err(_) => {
                    device_log::log(
                        Severity::Error,
                        &format!("Could not list hosts for {device_type}."),
                    );
                    rc = -1;
                }
            }
        }
        if let Some(node) = &inv.node {
            let request = inv.request.unwrap_or(ResetRequest::Reset);
            rc = code_of(device.reset(request, &node.to_lowercase()));
        }
    }
    rc
}

/// The one parameter source given, if any; `Err` when two kinds were given.
fn distinct_source(sources: &[ParamSource]) -> Result<Option<ParamSource>, ()> {
    let kind = |source: &ParamSource| std::mem::discriminant(source);
    match sources.last() {
        None => Ok(None),
        Some(last) if sources.iter().all(|s| kind(s) == kind(last)) => Ok(Some(last.clone())),
        Some(_) => Err(()),
    }
}

/// Configures the device as cluster-glue's tool does; `Some(exit code)` when the tool stops
/// here. A device that refuses `-p` or `-E` parameters is left unconfigured and the tool
/// goes on (its operations then fail), as cluster-glue's does.
fn configure(
    device: &mut dyn StonithDevice,
    device_type: &str,
    source: Option<&ParamSource>,
    named: &[(String, String)],
) -> Option<i32> {
    match source {
        Some(ParamSource::File(path)) => {
            let configured = params_from_file(device, path)
                .and_then(|params| device.configure(&params).map_err(|_| ()));
            if configured.is_err() {
                device_log::log(
                    Severity::Error,
                    &format!("Invalid config file for {device_type} device."),
                );
                return Some(StonithCode::BadConfig.number());
            }
        }
        Some(ParamSource::Environment) => {
            let params: Vec<(String, String)> = device
                .config_names()
                .into_iter()
                .filter_map(|name| {
                    let value = std::env::var_os(&name)?;
                    Some((name, value.to_string_lossy().into_owned()))
                })
                .collect();
            if device.configure(&params).is_err() {
                eprintln!("Invalid config info for {device_type} device");
            }
        }
        Some(ParamSource::Positional(text)) => {
            let Ok(params) = positional_params(&device.config_names(), text) else {
                eprintln!("Invalid STONITH -p parameter [{text}]");
                return Some(1);
            };
            if device.configure(&params).is_err() {
                eprintln!("Invalid config info for {device_type} device");
            }
        }
        None => {
            if let Err(err) = device.configure(named) {
                let mut message = format!("Invalid config info for {device_type} device\n");
                message.push_str("Valid config names are:\n");
                for name in device.config_names() {
                    let _ = writeln!(message, "\t{name}");
                }
                eprint!("{message}");
                return Some(err.code.number());
            }
        }
    }
    None
}

/// The parameters on the first line of `path` that is neither empty nor a `#` comment,
/// assigned to the device's names in order. Logs why it cannot.
fn params_from_file(device: &dyn StonithDevice, path: &str) -> Result<Vec<(String, String)>, ()> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => {
            device_log::log(Severity::Critical, &format!("Cannot open {path}"));
            return Err(());
        }
    };
    let line = text
        .split_inclusive('\n')
        .find(|line| !line.starts_with('#') && *line != "\n")
        .ok_or(())?;
    let line = line.strip_suffix('\n').unwrap_or(line);
    positional_params(&device.config_names(), line).map_err(|_| ())
}

/// The exit code of a device call: 0, or its `S_*` code.
fn code_of(result: Result<(), vigil_plugin_api::StonithError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(err) => err.code.number(),
    }
}

/// C's `atoi`: the leading decimal number, 0 when there is none.
fn c_atoi(text: &str) -> i64 {
    let text = text.trim_start();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end]
        .parse::<i64>()
        .map_or(0, |n| sign * n.min(i64::from(i32::MAX)))
}

/// The usage text of cluster-glue's tool.
fn usage_text(program: &str) -> String {
    let params = "{-p stonith-device-parameters | -F stonith-device-parameters-file | -E | name=value...} [-c count]";
    format!(
        "usage:\n\
         \t {program} [-svh] -L\n\
         \t {program} [-svh] -t stonith-device-type -n\n\
         \t {program} [-svh] -t stonith-device-type -m\n\
         \t {program} [-svh] -t stonith-device-type {params} -lS\n\
         \t {program} [-svh] -t stonith-device-type {params} -T {{reset|on|off}} nodename\n\
         \n\
         where:\n\
         \t-L\tlist supported stonith device types\n\
         \t-l\tlist hosts controlled by this stonith device\n\
         \t-S\treport stonith device status\n\
         \t-s\tsilent\n\
         \t-v\tverbose\n\
         \t-n\toutput the config names of stonith-device-parameters\n\
         \t-m\tdisplay meta-data of the stonith device type\n\
         \t-h\tdisplay detailed help message with stonith device description(s)\n"
    )
}

/// Prints the usage on stderr and returns `status`.
fn usage(program: &str, status: i32) -> i32 {
    eprint!("{}", usage_text(program));
    status
}

/// `-h`: on stdout, the usage and every device type's description, or (with `-t`) that
/// type's description alone.
fn usage_with_help(program: &str, registry: &Registry, device_type: Option<&str>) -> i32 {
    let mut out = String::new();
    match device_type {
        None => {
            out.push_str(&usage_text(program));
            out.push_str("\nSTONITH -t device types and associated configuration details:\n");
            for each in registry.stonith_types() {
                describe_type(registry, &each, &mut out);
            }
        }
        Some(wanted) => {
            if registry.stonith_types().iter().any(|t| t == wanted) {
                describe_type(registry, wanted, &mut out);
            } else {
                print!("{out}");
                eprintln!("Invalid device type: '{wanted}'");
                return 0;
            }
        }
    }
    print!("{out}");
    0
}

/// One device type's section of `-h`.
fn describe_type(registry: &Registry, device_type: &str, out: &mut String) {
    let Ok(mut device) = registry.stonith_device(device_type) else {
        print!("{out}");
        out.clear();
        eprintln!("Invalid STONITH type {device_type}(!)");
        return;
    };
    let _ = write!(out, "\n\nSTONITH Device: {device_type} - ");
    if let Some(description) = device.info(DeviceInfo::Description) {
        let _ = writeln!(out, "{description}");
    }
    if let Some(url) = device.info(DeviceInfo::Url) {
        let _ = writeln!(out, "For more information see {url}");
    }
    let _ = writeln!(
        out,
        "List of valid parameter names for {device_type} STONITH device:"
    );
    for name in device.config_names() {
        let _ = writeln!(out, "\t{name}");
    }
    out.push_str(
        "For Config info [-p] syntax, give each of the above parameters in order as\n\
         the -p value.\n\
         Arguments are separated by white space.\n\
         Config file [-F] syntax is the same as -p, except # at the start of a line\n\
         denotes a comment\n",
    );
}

/// `-m`: the device type's meta-data, cluster-glue's template around its texts.
fn print_metadata(device: &mut dyn StonithDevice, device_type: &str) {
    let mut text_or_note = |what: DeviceInfo, missing: &str| match device.info(what) {
        Some(text) => text,
        None => {
            eprint!("stonithRA plugin: {missing}");
            NO_VALUE.to_string()
        }
    };
    let longdesc = xml_escape(&text_or_note(
        DeviceInfo::Description,
        "no long description",
    ));
    let shortdesc = xml_escape(&text_or_note(DeviceInfo::DeviceId, "no short description"));
    let parameters = text_or_note(DeviceInfo::ConfigXml, "no list of parameters");
    print!(
        "{META_TEMPLATE_HEAD}<resource-agent name=\"{device_type}\">\n<version>1.0</version>\n<longdesc lang=\"en\">\n{longdesc}\n</longdesc>\n<shortdesc lang=\"en\">{shortdesc}</shortdesc>\n{parameters}\n{META_TEMPLATE_TAIL}"
    );
}

/// libxml2's `xmlEncodeEntitiesReentrant` without a document: `&`, `<`, `>` and carriage
/// returns become references, and so does every character beyond ASCII.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if !c.is_ascii() => {
                let _ = write!(out, "&#x{:X};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Sends log events where cluster-glue's tool sends its log lines: `LEVEL: text` on stderr
/// when stdin is a terminal, syslog otherwise (and stderr too with `-d`).
fn init_logging(debug: bool) {
    let terminal = std::io::stdin().is_terminal();
    if !terminal {
        // SAFETY: openlog keeps the pointer; the identity is a static C string.
        unsafe { libc::openlog(c"stonith".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
    }
    let layer = GlueLogLayer {
        to_stderr: terminal || debug,
        to_syslog: !terminal,
        debug,
    };
    let subscriber = tracing_subscriber::registry().with(layer);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The subscriber layer printing events as cluster-glue's tool prints its log lines.
struct GlueLogLayer {
    /// Print `LEVEL: text` on stderr.
    to_stderr: bool,
    /// Send to syslog (LOG_DAEMON, as cluster-glue's default facility).
    to_syslog: bool,
    /// Include `debug` lines (`-d`).
    debug: bool,
}

impl<S: Subscriber> Layer<S> for GlueLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        if metadata.target() == SCRIPT_STDERR_TARGET {
            // A script's own stderr: cluster-glue's scripts inherit the tool's stderr.
            eprint!("{}", fields.message);
            return;
        }
        let severity = fields
            .severity
            .as_deref()
            .and_then(Severity::from_label)
            .unwrap_or(match *metadata.level() {
                Level::ERROR => Severity::Error,
                Level::WARN => Severity::Warning,
                Level::INFO => Severity::Info,
                _ => Severity::Debug,
            });
        if severity == Severity::Debug && !self.debug {
            return;
        }
        let line = format!("{}: {}", severity.label(), fields.message);
        if self.to_stderr {
            eprintln!("{line}");
        }
        if self.to_syslog {
            let priority = match severity {
                Severity::Critical => libc::LOG_CRIT,
                Severity::Error => libc::LOG_ERR,
                Severity::Warning => libc::LOG_WARNING,
                Severity::Info => libc::LOG_INFO,
                Severity::Debug => libc::LOG_DEBUG,
            };
            if let Ok(text) = CString::new(line.replace('\0', " ")) {
                // SAFETY: a constant format taking one NUL-terminated string, which lives
                // across the call.
                unsafe { libc::syslog(priority, c"%s".as_ptr(), text.as_ptr()) };
            }
        }
    }
}

/// The fields of one event this layer prints.
#[derive(Default)]
struct EventFields {
    message: String,
    severity: Option<String>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            SEVERITY_FIELD => self.severity = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            SEVERITY_FIELD => self.severity = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_reads_the_leading_number_as_c_does() {
        assert_eq!(c_atoi("3"), 3);
        assert_eq!(c_atoi(" 12abc"), 12);
        assert_eq!(c_atoi("abc"), 0);
        assert_eq!(c_atoi("-2"), -2);
        assert_eq!(c_atoi(""), 0);
    }

    #[test]
    fn only_one_kind_of_parameter_source_is_accepted() {
        let p = |s: &str| ParamSource::Positional(s.to_string());
        assert_eq!(distinct_source(&[]), Ok(None));
        assert_eq!(distinct_source(&[p("a"), p("b")]), Ok(Some(p("b"))));
        assert_eq!(
            distinct_source(&[p("a"), ParamSource::Environment]),
            Err(())
        );
    }

    #[test]
    fn xml_escaping_matches_libxml2() {
        assert_eq!(
            xml_escape("a & <b> \"q\"\r\né"),
            "a &amp; &lt;b&gt; \"q\"&#13;\n&#xE9;"
        );
    }

    #[test]
    fn usage_names_the_program_on_every_line() {
        let text = usage_text("vigil stonith");
        assert!(text.starts_with("usage:\n\t vigil stonith [-svh] -L\n"));
        assert!(text.ends_with("device description(s)\n"));
    }
}

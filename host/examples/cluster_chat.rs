//! A cluster chat: the smallest useful program on vigil's client API.
//!
//! Run one on each node, signed on under the same client name (allow it with `apiauth chat
//! uid=root` in ha.cf, or `apiauth: [{ client: chat, uid: [root] }]` in cluster.yaml):
//!
//! ```text
//! cargo run -p vigil --example cluster_chat -- --socket /run/vigil/vigil.sock
//! ```
//!
//! Every line typed is sent to the chat client on every node (or only on `--to NODE`); every
//! line received is printed as `message FROM N TEXT`, and node and link changes as
//! `event KIND NODE TEXT`. With `--count N` it sends N numbered messages instead of reading
//! standard input, and with `--expect M` it exits after M messages from other nodes; the
//! integration tests use both. `--peers P` holds sending until the chat client of P other
//! nodes is known to be signed on: from its join notice (`hbapi-clstat`), which Heartbeat and
//! vigil send to the same client on every node, or from the `chat-hello` each client answers
//! a join with (so the first of two clients learns of the second, and the second of the first).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vigil::api::client::{ClusterClient, ClusterEvent};

/// The message type this program sends and reads.
const CHAT: &str = "chat";
/// The answer to a peer's join notice: "I am here too".
const HELLO: &str = "chat-hello";

struct Options {
    socket: PathBuf,
    client: String,
    to: Option<String>,
    count: Option<u64>,
    expect: Option<u64>,
    interval: Duration,
    timeout: Duration,
    peers: usize,
}

fn usage() -> String {
    "usage: cluster_chat --socket PATH [--client NAME] [--to NODE] [--count N] [--expect M] \
     [--interval-ms MS] [--timeout-s S] [--peers P]"
        .to_string()
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        socket: PathBuf::from(vigil::api::DEFAULT_SOCKET),
        client: CHAT.to_string(),
        to: None,
        count: None,
        expect: None,
        interval: Duration::ZERO,
        timeout: Duration::from_secs(60),
        peers: 0,
    };
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
        };
        let number = |text: String| {
            text.parse::<u64>()
                .map_err(|_| format!("{flag}: {text:?} is not a whole number"))
        };
        match flag.as_str() {
            "--socket" => options.socket = PathBuf::from(value()?),
            "--client" => options.client = value()?,
            "--to" => options.to = Some(value()?),
            "--count" => options.count = Some(number(value()?)?),
            "--expect" => options.expect = Some(number(value()?)?),
            "--interval-ms" => options.interval = Duration::from_millis(number(value()?)?),
            "--timeout-s" => options.timeout = Duration::from_secs(number(value()?)?),
            "--peers" => options.peers = usize::try_from(number(value()?)?).unwrap_or(usize::MAX),
            _ => return Err(usage()),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cluster_chat: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), String> {
    let mut client =
        ClusterClient::signon(&options.socket, &options.client).map_err(|e| e.to_string())?;
    println!("signed on {} as {}", client.node(), client.client_name());
    for node in client.nodes().map_err(|e| e.to_string())? {
        let links: Vec<String> = node
            .links
            .iter()
            .map(|(name, up)| format!("{name}:{}", if *up { "up" } else { "dead" }))
            .collect();
        println!("node {} {} {}", node.name, node.status, links.join(" "));
    }

    // Lines to send: numbered ones, or standard input read on its own thread.
    let (lines_tx, lines) = mpsc::channel::<String>();
    match options.count {
        Some(count) => {
            for n in 1..=count {
                let _ = lines_tx.send(format!("message {n} from {}", client.node()));
            }
            drop(lines_tx);
        }
        None => {
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                    if lines_tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
    }

    let deadline = Instant::now() + options.timeout;
    let mut sent = 0u64;
    let mut received = 0u64;
    let mut next_send = Instant::now();
    let mut peers = std::collections::BTreeSet::new();
    loop {
        if options.expect.is_some_and(|expect| received >= expect)
            && (options.count.is_none() || sent == options.count.unwrap_or(0))
        {
            return Ok(());
        }
        if Instant::now() > deadline && (options.expect.is_some() || peers.len() < options.peers) {
            return Err(format!(
                "timed out: {received} of {} messages received",
                options.expect.unwrap_or(0)
            ));
        }
        if Instant::now() >= next_send && peers.len() >= options.peers {
            match lines.try_recv() {
                Ok(text) => {
                    sent += 1;
                    let n = sent.to_string();
                    client
                        .send(options.to.as_deref(), CHAT, &[("n", &n), ("text", &text)])
                        .map_err(|e| e.to_string())?;
                    next_send = Instant::now() + options.interval;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) if options.expect.is_none() => return Ok(()),
                Err(mpsc::TryRecvError::Disconnected) => {}
            }
        }
        let wait = Duration::from_millis(if sent < options.count.unwrap_or(0) {
            1
        } else {
            100
        });
        let Some(event) = client.recv_timeout(wait).map_err(|e| e.to_string())? else {
            continue;
        };
        match event {
            ClusterEvent::Message(message) if message.message_type == CHAT => {
                let field = |name: &str| {
                    message
                        .fields
                        .iter()
                        .find(|(field, _)| field == name)
                        .map_or("", |(_, value)| value.as_str())
                        .to_string()
                };
                println!("message {} {} {}", message.from, field("n"), field("text"));
                if message.from != client.node() {
                    received += 1;
                }
            }
            ClusterEvent::Message(message) if message.from != client.node() => {
                let joined = message.message_type == "hbapi-clstat"
                    && message
                        .fields
                        .iter()
                        .any(|(name, value)| name == "st" && value == "join");
                if joined {
                    let me = client.node().to_string();
                    client
                        .send(Some(&message.from), HELLO, &[("node", &me)])
                        .map_err(|e| e.to_string())?;
                }
                if joined || message.message_type == HELLO {
                    if peers.insert(message.from.clone()) {
                        println!("peer {}", message.from);
                    }
                } else {
                    println!("other {} {}", message.from, message.message_type);
                }
            }
            ClusterEvent::Message(_) => {}
            ClusterEvent::Membership(event) => {
                println!(
                    "event {} {} {}",
                    event.kind,
                    event.node.as_deref().unwrap_or("-"),
                    event.text
                );
            }
        }
    }
}

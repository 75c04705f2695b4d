//! GNU `getopt(3)` option parsing, for the tools whose command lines must read exactly as
//! the C originals read them (`stonith`, `meatclient`): clustered flags (`-lS`), attached and
//! separate option arguments (`-tnull`, `-t null`), options anywhere between operands
//! (glibc permutes them), `--` ending options, and glibc's messages for bad options.
//!
//! It only splits the command line; what an option means, and what to do about a bad one,
//! is the tool's business.

/// One item of the command line, in the order met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An option letter with its argument when it takes one.
    Option(char, Option<String>),
    /// A bad option, with glibc's message (`stonith: invalid option -- 'x'`), which the tool
    /// prints on stderr when it meets it.
    Error(String),
}

/// The parsed command line: options in order, then the operands (non-options) in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Options and errors, in command-line order.
    pub items: Vec<Item>,
    /// Everything that is not an option, in order.
    pub operands: Vec<String>,
}

/// Parses `args` (without the program name) against `spec`, getopt's option string: each
/// letter an option, a `:` after it when it takes an argument. `program` starts error
/// messages, as glibc uses `argv[0]`.
pub fn parse(program: &str, spec: &str, args: &[String]) -> Parsed {
    let takes_argument = |letter: char| -> Option<bool> {
        let at = spec.find(letter).filter(|_| letter != ':')?;
        Some(spec[at + letter.len_utf8()..].starts_with(':'))
    };
    let mut items = Vec::new();
    let mut operands = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            operands.extend(rest.by_ref().cloned());
            break;
        }
        let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) else {
            operands.push(arg.clone());
            continue;
        };
        for (at, letter) in cluster.char_indices() {
            match takes_argument(letter) {
                None => items.push(Item::Error(format!(
                    "{program}: invalid option -- '{letter}'"
                ))),
                Some(false) => items.push(Item::Option(letter, None)),
                Some(true) => {
                    let attached = &cluster[at + letter.len_utf8()..];
                    let value = if attached.is_empty() {
                        rest.next().cloned()
                    } else {
                        Some(attached.to_string())
                    };
                    match value {
                        Some(value) => items.push(Item::Option(letter, Some(value))),
                        None => items.push(Item::Error(format!(
                            "{program}: option requires an argument -- '{letter}'"
                        ))),
                    }
                    break;
                }
            }
        }
    }
    Parsed { items, operands }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_are_found_anywhere_and_operands_keep_their_order() {
        let parsed = parse(
            "stonith",
            "c:t:lS",
            &args(&[
                "-tnull",
                "hostlist=a b",
                "-lS",
                "-c",
                "2",
                "node",
                "--",
                "-l",
            ]),
        );
        assert_eq!(
            parsed.items,
            [
                Item::Option('t', Some("null".into())),
                Item::Option('l', None),
                Item::Option('S', None),
                Item::Option('c', Some("2".into())),
            ]
        );
        assert_eq!(parsed.operands, ["hostlist=a b", "node", "-l"]);
    }

    #[test]
    fn bad_options_get_glibc_messages_in_place() {
        let parsed = parse("stonith", "p:l", &args(&["-x", "-l", "-p"]));
        assert_eq!(
            parsed.items,
            [
                Item::Error("stonith: invalid option -- 'x'".into()),
                Item::Option('l', None),
                Item::Error("stonith: option requires an argument -- 'p'".into()),
            ]
        );
    }

    #[test]
    fn an_option_argument_may_start_with_a_dash_and_a_lone_dash_is_an_operand() {
        let parsed = parse("stonith", "p:", &args(&["-p", "-l", "-"]));
        assert_eq!(parsed.items, [Item::Option('p', Some("-l".into()))]);
        assert_eq!(parsed.operands, ["-"]);
    }
}

//! Heartbeat's haresources syntax (spec §5.1): one resource group per logical line.
//!
//! Owns the line rules (comments, `\` continuation, the preferred node) and keeps resource
//! tokens exactly as written: what `IPaddr::…` or `Filesystem::…` means is the resource
//! layer's business, not this module's. Reads no file.
//!
//! haresources has no syntax for a group's failover order or a resource's timeout and
//! monitoring, so its groups keep the defaults: the default order, the default operation
//! timeout and no monitoring. Only the YAML file can set them.

use super::error::ConfigError;
use super::model::{ResourceEntry, ResourceGroupConfig};

/// Reads the text of a haresources named `file` (used in messages as `file:line`, the line
/// where a group starts). Every group's node must be one of `nodes` (lower-cased).
pub(crate) fn parse(
    text: &str,
    file: &str,
    nodes: &[String],
) -> Result<Vec<ResourceGroupConfig>, ConfigError> {
    let mut groups: Vec<ResourceGroupConfig> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim_end();
        let (continues, line) = match line.strip_suffix('\\') {
            Some(joined) => (true, joined),
            None => (false, line),
        };
        let (start, mut logical) = pending.take().unwrap_or((index + 1, String::new()));
        logical.push(' ');
        logical.push_str(line);
        if continues {
            pending = Some((start, logical));
            continue;
        }
        let origin = format!("{file}:{start}");
        if let Some(group) = parse_group(&logical, origin, nodes)? {
            if let Some(first) = groups.iter().find(|g| g.key() == group.key()) {
                return Err(ConfigError::Duplicate {
                    what: format!("resource group `{}`", group.key()),
                    origin: group.origin,
                    first: first.origin.clone(),
                });
            }
            groups.push(group);
        }
    }
    // A continuation on the last line simply ends the group.
    if let Some((start, logical)) = pending
        && let Some(group) = parse_group(&logical, format!("{file}:{start}"), nodes)?
    {
        groups.push(group);
    }
    Ok(groups)
}

/// One logical line: `node resource…`, or nothing if the line is blank.
fn parse_group(
    line: &str,
    origin: String,
    nodes: &[String],
) -> Result<Option<ResourceGroupConfig>, ConfigError> {
    let mut words = line.split_whitespace();
    let Some(node) = words.next() else {
        return Ok(None);
    };
    let node = node.to_ascii_lowercase();
    if !nodes.contains(&node) {
        return Err(ConfigError::UnknownNode {
            origin,
            node,
            nodes: nodes.join(", "),
        });
    }
    let resources: Vec<ResourceEntry> = words.map(ResourceEntry::plain).collect();
    if resources.is_empty() {
        return Err(ConfigError::Resources {
            origin,
            message: format!(
                "node `{node}` has no resources (expected `{node} resource1 [resource2 …]`)"
            ),
        });
    }
    Ok(Some(ResourceGroupConfig {
        node,
        order: Vec::new(),
        resources,
        origin,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        vec!["alpha".to_string(), "beta".to_string()]
    }

    #[test]
    fn groups_keep_node_and_tokens_as_written() {
        let groups = parse(
            "# node-name  resource1 resource2\n\
             alpha 192.168.1.10 Filesystem::/dev/sda1::/data::ext3 httpd\n\
             \n\
             Beta  IPaddr::192.168.1.11/24/eth0/192.168.1.255   mysql # trailing comment\n",
            "haresources",
            &nodes(),
        )
        .expect("valid haresources");
        assert_eq!(
            groups,
            [
                ResourceGroupConfig {
                    node: "alpha".to_string(),
                    order: Vec::new(),
                    resources: vec![
                        ResourceEntry::plain("192.168.1.10"),
                        ResourceEntry::plain("Filesystem::/dev/sda1::/data::ext3"),
                        ResourceEntry::plain("httpd"),
                    ],
                    origin: "haresources:2".to_string(),
                },
                ResourceGroupConfig {
                    node: "beta".to_string(),
                    order: Vec::new(),
                    resources: vec![
                        ResourceEntry::plain("IPaddr::192.168.1.11/24/eth0/192.168.1.255"),
                        ResourceEntry::plain("mysql"),
                    ],
                    origin: "haresources:4".to_string(),
                },
            ]
        );
    }

    #[test]
    fn a_trailing_backslash_joins_the_next_line() {
        let groups = parse(
            "alpha IPaddr::10.0.0.1 \\\n    httpd\\\n  mysql\nbeta x\n",
            "haresources",
            &nodes(),
        )
        .expect("valid haresources");
        let tokens: Vec<&str> = groups[0]
            .resources
            .iter()
            .map(|r| r.token.as_str())
            .collect();
        assert_eq!(tokens, ["IPaddr::10.0.0.1", "httpd", "mysql"]);
        assert_eq!(groups[0].origin, "haresources:1");
        assert_eq!(groups[1].origin, "haresources:4");
    }

    #[test]
    fn the_preferred_node_must_be_configured() {
        let err = parse("alpha a\ngamma httpd\n", "/etc/ha.d/haresources", &nodes())
            .expect_err("gamma is not a node");
        assert_eq!(
            err.to_string(),
            "/etc/ha.d/haresources:2: `gamma` is not a configured node (nodes: alpha, beta)"
        );
    }

    #[test]
    fn a_group_needs_resources_and_a_distinct_key() {
        let err = parse("alpha\n", "haresources", &nodes()).expect_err("no resources");
        assert_eq!(
            err.to_string(),
            "haresources:1: node `alpha` has no resources (expected `alpha resource1 \
             [resource2 …]`)"
        );
        let err = parse("alpha httpd\nbeta httpd mysql\n", "haresources", &nodes())
            .expect_err("same group key twice");
        assert_eq!(
            err.to_string(),
            "haresources:2: resource group `httpd` given twice (first at haresources:1)"
        );
    }

    #[test]
    fn an_empty_file_has_no_groups() {
        assert_eq!(
            parse("# nothing\n\n", "haresources", &nodes())
                .map(|g| g.len())
                .ok(),
            Some(0)
        );
    }
}

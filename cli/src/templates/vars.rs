//! Typed template variables: what `--define key=value` may set, checked by `new` before
//! anything is written, with the template's own constraints.
//!
//! A variable's `type` in `template.toml` says what its value is (`port`, `integer`, `seconds`,
//! `host`, `path`, or `text`, the default), `min` and `max` bound numbers, and
//! `[[constraints]]` tie variables together (`multiple-of = ["window_seconds",
//! "batch_seconds"]`: a window must be a multiple of the batch interval). Values are rendered
//! into Rust source (`Seconds({{batch_seconds}})`, `"{{host}}"`), so a value that passes here
//! is one the generated crate compiles and starts with.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::with_help;

/// What a variable's value is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VarType {
    /// Any text without `"`, `\` or a line break (it is rendered into a string literal).
    #[default]
    Text,
    /// A TCP port, 1 to 65535.
    Port,
    /// A whole number, within `min` and `max` when given.
    Integer,
    /// A duration in whole seconds (`6`, `6s`, `2m`, `1h`), rendered as its number of seconds;
    /// at least 1 unless `min` says otherwise.
    Seconds,
    /// A host name or an IP address.
    Host,
    /// A file or directory path (text that is not empty).
    Path,
}

/// A rule between variables of one template.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// `[a, b]`: the value of `a` must be a multiple of the value of `b`.
    #[serde(rename = "multiple-of")]
    pub multiple_of: [String; 2],
}

/// Checks one value of variable `key` against its type and bounds; returns the value as it
/// is rendered (a duration becomes its number of seconds).
pub fn check(
    key: &str,
    ty: VarType,
    min: Option<u64>,
    max: Option<u64>,
    value: &str,
) -> anyhow::Result<String> {
    let bad = |what: String, help: String| {
        Err(with_help(
            anyhow::anyhow!("invalid value `{value}` for `{key}`: {what}"),
            help,
        ))
    };
    if value.contains(['"', '\\', '\n', '\r']) {
        return bad(
            "it may not contain `\"`, `\\` or a line break".into(),
            format!("pass `--define {key}=...` without them"),
        );
    }
    match ty {
        VarType::Text => Ok(value.to_owned()),
        VarType::Path => {
            if value.trim().is_empty() {
                bad(
                    "a path cannot be empty".into(),
                    format!("pass `--define {key}=DIR`"),
                )
            } else {
                Ok(value.to_owned())
            }
        }
        VarType::Host => {
            if value.parse::<IpAddr>().is_ok() || is_host_name(value) {
                Ok(value.to_owned())
            } else {
                bad(
                    "expected a host name (letters, digits, `-` and `.`) or an IP address".into(),
                    format!(
                        "pass e.g. `--define {key}=127.0.0.1` or `--define {key}=stream.example.com`, without a port"
                    ),
                )
            }
        }
        VarType::Port | VarType::Integer | VarType::Seconds => {
            let (lo, hi, unit) = match ty {
                VarType::Port => (min.unwrap_or(1).max(1), max.unwrap_or(65535).min(65535), ""),
                VarType::Seconds => (min.unwrap_or(1), max.unwrap_or(u64::from(u32::MAX)), " s"),
                _ => (min.unwrap_or(0), max.unwrap_or(u64::from(u32::MAX)), ""),
            };
            let what = match ty {
                VarType::Port => "a TCP port",
                VarType::Seconds => "a whole number of seconds",
                _ => "a whole number",
            };
            let range = format!("from {lo}{unit} to {hi}{unit}");
            let parsed = if ty == VarType::Seconds {
                parse_seconds(value)
            } else {
                value.trim().parse::<u64>().ok()
            };
            let example = if ty == VarType::Seconds {
                format!("`--define {key}={lo}` (or `{lo}s`, `1m`)")
            } else {
                format!("`--define {key}={}`", lo.max(1).min(hi))
            };
            match parsed {
                None => bad(
                    format!("expected {what} {range}"),
                    format!("pass e.g. {example}"),
                ),
                Some(n) if n < lo || n > hi => bad(
                    format!("{what} must be {range}"),
                    format!("pass a value {range}, e.g. {example}"),
                ),
                Some(n) => Ok(n.to_string()),
            }
        }
    }
}

/// Checks the template's constraints on the values (already checked one by one).
pub fn check_constraints(
    template: &str,
    constraints: &[Constraint],
    values: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    for c in constraints {
        let [a, b] = &c.multiple_of;
        let number = |k: &str| values.get(k).and_then(|v| v.parse::<u64>().ok());
        let (Some(x), Some(y)) = (number(a), number(b)) else {
            anyhow::bail!(
                "template `{template}`: constraint `multiple-of = [{a:?}, {b:?}]` names a variable that is not a number (a bug in this build of cargo-stream)"
            );
        };
        if y == 0 || !x.is_multiple_of(y) {
            let below = x / y.max(1) * y;
            let fix = if below == 0 {
                format!("`--define {a}={y}`")
            } else {
                format!("`--define {a}={below}` or `--define {a}={}`", below + y)
            };
            return Err(with_help(
                anyhow::anyhow!("`{a}` ({x}) must be a multiple of `{b}` ({y})"),
                format!("pass {fix}, or change `{b}`"),
            ));
        }
    }
    Ok(())
}

/// A short hint on the values a variable takes, for `--list` and the questions of `new`.
pub fn hint(ty: VarType, min: Option<u64>, max: Option<u64>) -> Option<String> {
    match ty {
        VarType::Text | VarType::Path => None,
        VarType::Host => Some("host name or IP address".into()),
        VarType::Port => Some(format!(
            "port, {}-{}",
            min.unwrap_or(1),
            max.unwrap_or(65535)
        )),
        VarType::Seconds => Some(match max {
            Some(hi) => format!("seconds, {}-{hi}", min.unwrap_or(1)),
            None => format!("seconds, at least {}", min.unwrap_or(1)),
        }),
        VarType::Integer => match (min, max) {
            (Some(lo), Some(hi)) => Some(format!("number, {lo}-{hi}")),
            (Some(lo), None) => Some(format!("number, at least {lo}")),
            (None, Some(hi)) => Some(format!("number, at most {hi}")),
            (None, None) => Some("number".into()),
        },
    }
}

/// `N`, `Ns`, `Nm` or `Nh` as a number of seconds.
fn parse_seconds(value: &str) -> Option<u64> {
    let v = value.trim();
    let (digits, scale) = if let Some(n) = v.strip_suffix("min") {
        (n, 60)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60)
    } else if let Some(n) = v.strip_suffix('h') {
        (n, 3600)
    } else {
        (v, 1)
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(scale)
}

/// RFC 1123 host names: labels of letters, digits and `-`, not starting or ending with `-`.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(key: &str, ty: VarType, min: Option<u64>, max: Option<u64>, v: &str) -> String {
        let e = check(key, ty, min, max, v).unwrap_err();
        format!(
            "{e}\nhelp: {}",
            crate::error::help_of(&e).unwrap_or_default()
        )
    }

    #[test]
    fn ports_are_numbers_from_1_to_65535() {
        assert_eq!(
            check("port", VarType::Port, None, None, "9999").unwrap(),
            "9999"
        );
        let e = err("port", VarType::Port, None, None, "abc");
        assert!(
            e.contains("invalid value `abc` for `port`: expected a TCP port from 1 to 65535"),
            "{e}"
        );
        let e = err("port", VarType::Port, None, None, "99999");
        assert!(
            e.contains("`port`: a TCP port must be from 1 to 65535"),
            "{e}"
        );
        assert!(e.contains("--define port=1"), "{e}");
        assert!(check("port", VarType::Port, None, None, "0").is_err());
    }

    #[test]
    fn seconds_take_units_and_a_minimum() {
        assert_eq!(
            check("s", VarType::Seconds, None, None, "2m").unwrap(),
            "120"
        );
        assert_eq!(check("s", VarType::Seconds, None, None, "6s").unwrap(), "6");
        let e = err("batch_seconds", VarType::Seconds, None, None, "0");
        assert!(e.contains("must be from 1 s to"), "{e}");
        assert!(check("s", VarType::Seconds, None, None, "1.5").is_err());
        assert!(check("s", VarType::Seconds, None, Some(10), "11").is_err());
    }

    #[test]
    fn hosts_and_text_cannot_break_the_generated_source() {
        for ok in ["127.0.0.1", "::1", "localhost", "stream-1.example.com"] {
            assert!(check("host", VarType::Host, None, None, ok).is_ok(), "{ok}");
        }
        for bad in ["", "host:9999", "a b", "-x", "x\"y"] {
            assert!(
                check("host", VarType::Host, None, None, bad).is_err(),
                "{bad}"
            );
        }
        assert!(check("url", VarType::Text, None, None, "a\"); evil(); (\"").is_err());
        assert!(check("dir", VarType::Path, None, None, " ").is_err());
    }

    #[test]
    fn a_window_must_be_a_multiple_of_the_batch() {
        let c = [Constraint {
            multiple_of: ["window_seconds".into(), "batch_seconds".into()],
        }];
        let values = |w: &str| {
            BTreeMap::from([
                ("window_seconds".to_owned(), w.to_owned()),
                ("batch_seconds".to_owned(), "2".to_owned()),
            ])
        };
        check_constraints("t", &c, &values("6")).unwrap();
        let e = check_constraints("t", &c, &values("5")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`window_seconds` (5) must be a multiple of `batch_seconds` (2)"
        );
        let help = crate::error::help_of(&e).unwrap();
        assert!(
            help.contains("--define window_seconds=4` or `--define window_seconds=6"),
            "{help}"
        );
    }
}

//! Cargo's own build flags, as `cargo build` spells them, for `package` and `submit`: which
//! package of a workspace, which features, which profile and target, whether the lock file and
//! the network may be touched, and the message format. One `clap::Args` struct, flattened
//! into both verbs (in the manner of the `cargo-options` crate that cargo-zigbuild and
//! cargo-lambda use), turned here into the arguments of `cargo metadata` and `cargo build`.

use clap::Args;

/// Cargo's build flags that `package` and `submit` pass on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Args)]
pub struct CargoFlags {
    /// The job's package, in a workspace of several (`NAME` or `NAME@VERSION`)
    #[arg(
        short = 'p',
        long = "package",
        value_name = "SPEC",
        help_heading = "Package Selection"
    )]
    pub package: Option<String>,
    /// Space or comma separated list of features to activate
    #[arg(
        short = 'F',
        long,
        value_name = "FEATURES",
        help_heading = "Feature Selection"
    )]
    pub features: Vec<String>,
    /// Activate all available features
    #[arg(long, help_heading = "Feature Selection")]
    pub all_features: bool,
    /// Do not activate the `default` feature
    #[arg(long, help_heading = "Feature Selection")]
    pub no_default_features: bool,
    /// Build with this profile instead of `release`
    #[arg(
        long,
        value_name = "PROFILE-NAME",
        help_heading = "Compilation Options"
    )]
    pub profile: Option<String>,
    /// Build for this target triple (default: the host)
    #[arg(long, value_name = "TRIPLE", help_heading = "Compilation Options")]
    pub target: Option<String>,
    /// Cargo's message format: human, short, json, json-diagnostic-short,
    /// json-diagnostic-rendered-ansi, json-render-diagnostics; any `json` prints cargo's
    /// messages and the result as JSON lines on stdout
    #[arg(
        long,
        value_name = "FMT",
        value_parser = MessageFormat::parse,
        help_heading = "Compilation Options"
    )]
    pub message_format: Option<MessageFormat>,
    /// Require Cargo.lock to be up to date
    #[arg(long, help_heading = "Manifest Options")]
    pub locked: bool,
    /// Run without accessing the network
    #[arg(long, help_heading = "Manifest Options")]
    pub offline: bool,
    /// Require Cargo.lock and the cache to be up to date (--locked and --offline)
    #[arg(long, help_heading = "Manifest Options")]
    pub frozen: bool,
}

impl CargoFlags {
    /// Whether any flag is set (they only matter when the job is built).
    pub fn any(&self) -> bool {
        *self != CargoFlags::default()
    }

    /// `--locked`, `--offline`, `--frozen`, as given: cargo metadata and cargo build take them.
    pub fn manifest_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (set, flag) in [
            (self.locked, "--locked"),
            (self.offline, "--offline"),
            (self.frozen, "--frozen"),
        ] {
            if set {
                args.push(flag.to_owned());
            }
        }
        args
    }

    /// The feature flags, as given.
    pub fn feature_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for features in &self.features {
            args.extend(["--features".to_owned(), features.clone()]);
        }
        if self.all_features {
            args.push("--all-features".to_owned());
        }
        if self.no_default_features {
            args.push("--no-default-features".to_owned());
        }
        args
    }

    /// The profile flag of the build: `--release`, or `--profile NAME`.
    pub fn profile_args(&self) -> Vec<String> {
        match self.profile.as_deref() {
            None | Some("release") => vec!["--release".to_owned()],
            Some(name) => vec!["--profile".to_owned(), name.to_owned()],
        }
    }

    /// The message format in force (`human` unless given).
    pub fn message_format(&self) -> MessageFormat {
        self.message_format.clone().unwrap_or_default()
    }
}

/// Cargo's `--message-format`, checked as cargo checks it: comma-separated values, `human`
/// and `short` exclusive with the JSON ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageFormat {
    /// The values as given (`json`, `json-diagnostic-short`, ...); empty for `human`.
    values: Vec<String>,
    /// Any `json` value.
    json: bool,
    /// `short` (human, one line per diagnostic).
    short: bool,
}

const JSON_VALUES: &[&str] = &[
    "json",
    "json-diagnostic-short",
    "json-diagnostic-rendered-ansi",
    "json-render-diagnostics",
];

impl MessageFormat {
    /// Parses `--message-format`'s value.
    ///
    /// ```
    /// use cargo_stream::package::cargo_flags::MessageFormat;
    /// assert!(MessageFormat::parse("json,json-diagnostic-short").unwrap().is_json());
    /// assert!(!MessageFormat::parse("short").unwrap().is_json());
    /// assert!(MessageFormat::parse("short,json").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<MessageFormat, String> {
        let mut format = MessageFormat::default();
        let mut human = false;
        for part in value.split(',').map(str::trim) {
            match part {
                "human" => human = true,
                "short" => format.short = true,
                p if JSON_VALUES.contains(&p) => {
                    format.json = true;
                    format.values.push(p.to_owned());
                }
                other => {
                    return Err(format!(
                        "unknown message format `{other}`; cargo's are human, short, {}",
                        JSON_VALUES.join(", ")
                    ));
                }
            }
        }
        if format.json && (human || format.short) {
            return Err("`human` and `short` cannot be combined with the JSON formats".to_owned());
        }
        if human && format.short {
            return Err("choose one of `human` and `short`".to_owned());
        }
        Ok(format)
    }

    /// Whether cargo's messages and the result go to stdout as JSON lines.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// The `--message-format` for `cargo build`: the JSON the binary's path is read from,
    /// diagnostics rendered on stderr unless the user asked for them as JSON.
    pub fn for_cargo(&self) -> String {
        if self.json {
            self.values.join(",")
        } else if self.short {
            "json-render-diagnostics,json-diagnostic-short".to_owned()
        } else {
            "json-render-diagnostics".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_cargos_arguments() {
        let flags = CargoFlags {
            features: vec!["a b".into(), "c".into()],
            no_default_features: true,
            profile: Some("dist".into()),
            locked: true,
            offline: true,
            ..CargoFlags::default()
        };
        assert_eq!(
            flags.feature_args(),
            [
                "--features",
                "a b",
                "--features",
                "c",
                "--no-default-features"
            ]
        );
        assert_eq!(flags.profile_args(), ["--profile", "dist"]);
        assert_eq!(flags.manifest_args(), ["--locked", "--offline"]);
        assert!(flags.any());
        assert!(!CargoFlags::default().any());
        assert_eq!(CargoFlags::default().profile_args(), ["--release"]);
    }

    #[test]
    fn message_formats_as_cargo_checks_them() {
        assert_eq!(
            MessageFormat::default().for_cargo(),
            "json-render-diagnostics"
        );
        let short = MessageFormat::parse("short").unwrap();
        assert_eq!(
            short.for_cargo(),
            "json-render-diagnostics,json-diagnostic-short"
        );
        let json = MessageFormat::parse("json-diagnostic-short").unwrap();
        assert!(json.is_json());
        assert_eq!(json.for_cargo(), "json-diagnostic-short");
        assert_eq!(
            MessageFormat::parse("json, json-render-diagnostics")
                .unwrap()
                .for_cargo(),
            "json,json-render-diagnostics"
        );
        assert!(MessageFormat::parse("xml").unwrap_err().contains("`xml`"));
        assert!(MessageFormat::parse("human,json").is_err());
    }
}

//! The job's environment values are secrets (tokens, passwords): they travel to the cluster
//! (in a REST body, or in a script on an SSH channel's standard input), never onto a command
//! line, and are never kept or shown here. Records and output keep the names, each value
//! written as [`REDACTED`].

use std::collections::BTreeMap;

/// What a secret value is written as.
pub const REDACTED: &str = "***";

/// `env` with every value replaced by [`REDACTED`].
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// use cargo_stream::cluster::secret::names_only;
/// let env = BTreeMap::from([("TOKEN".to_owned(), "s3cr3t".to_owned())]);
/// assert_eq!(names_only(&env)["TOKEN"], "***");
/// ```
pub fn names_only(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.keys()
        .map(|k| (k.clone(), REDACTED.to_owned()))
        .collect()
}

/// Serializes an environment map with its names only (for `#[serde(serialize_with)]`).
pub fn serialize_names_only<S: serde::Serializer>(
    env: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&names_only(env), s)
}

/// Serializes an optional environment map with its names only.
pub fn serialize_opt_names_only<S: serde::Serializer>(
    env: &Option<BTreeMap<String, String>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&env.as_ref().map(names_only), s)
}

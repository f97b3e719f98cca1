//! The job's `Stream.toml` as bundled: without its local profiles, which mean nothing on a
//! cluster.

use anyhow::Context as _;

/// The bundled text and the names of the profiles left out.
#[derive(Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The TOML to bundle.
    pub text: String,
    /// The local profiles removed, by name.
    pub removed: Vec<String>,
}

/// Removes every `[profile.NAME]` that is named `local` or whose `master` is `local...`, and
/// the client-side `[package]` and `[clusters]` tables.
///
/// # Examples
///
/// ```
/// let text = "[job]\nname = \"wc\"\n[profile.local]\nmaster = \"local[2]\"\n";
/// let out = cargo_stream::package::config::for_cluster(text).unwrap();
/// assert_eq!(out.removed, ["local"]);
/// assert!(!out.text.contains("local[2]"));
/// ```
pub fn for_cluster(text: &str) -> anyhow::Result<ClusterConfig> {
    let mut table: toml::Table = text.parse().context("failed to parse `Stream.toml`")?;
    // The `[package]` table holds `cargo stream package` settings and `[clusters]` the
    // client's cluster profiles (hosts, users, key paths): neither is the job's business.
    table.remove("package");
    table.remove("clusters");
    let mut removed = Vec::new();
    if let Some(profiles) = table.get_mut("profile").and_then(|p| p.as_table_mut()) {
        let local: Vec<String> = profiles
            .iter()
            .filter(|(name, p)| {
                *name == "local"
                    || p.get("master")
                        .and_then(|m| m.as_str())
                        .is_some_and(|m| m.starts_with("local"))
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in &local {
            profiles.remove(name);
        }
        removed = local;
        if profiles.is_empty() {
            table.remove("profile");
        }
    }
    let body = toml::to_string(&table).context("failed to write the cluster `Stream.toml`")?;
    Ok(ClusterConfig {
        text: format!(
            "# The job's Stream.toml for the cluster, written by `cargo stream package`: local profiles removed.\n\n{body}"
        ),
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_out_the_client_side_tables() {
        let text = "[job]\nname = \"wc\"\n[package]\nbin = \"wc\"\n[clusters.prod]\nkind = \"ssh\"\nhost = \"10.0.0.5\"\nidentity-file = \"~/.ssh/prod\"\n";
        let out = for_cluster(text).unwrap();
        assert!(out.text.contains("[job]"), "{}", out.text);
        assert!(
            !out.text.contains("clusters") && !out.text.contains("10.0.0.5"),
            "{}",
            out.text
        );
        assert!(!out.text.contains("[package]"), "{}", out.text);
    }

    #[test]
    fn keeps_cluster_profiles() {
        let text = "[profile.local]\nmaster = \"local[2]\"\n[profile.dev]\nmaster = \"local[*]\"\n[profile.prod]\nkind = \"spark-rest\"\nmaster = \"spark://h:6066\"\n";
        let out = for_cluster(text).unwrap();
        assert_eq!(out.removed, ["dev", "local"]);
        assert!(out.text.contains("[profile.prod]"), "{}", out.text);
        assert!(
            !out.text.contains("local[") && !out.text.contains("profile.local"),
            "{}",
            out.text
        );
    }
}

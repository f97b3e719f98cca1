//! Stable names for the checkpointed parts of a graph, and matching a checkpoint written by
//! changed code to the parts of this one, so that a checkpoint survives an upgrade.
//!
//! # The naming rule
//!
//! Every checkpointed part (a stateful operation's state, a file source's position, a
//! receiver's log, a window's state) is saved under a name: the one given with
//! [`DStream::name`](crate::DStream::name) on the stream that carries it, else
//! `FILE:KIND#N`, where `FILE` is the source file whose code created it (the path after its
//! last `src/`), `KIND` the operation (`update_state_by_key`) and `N` its rank among parts of
//! that kind created from that file, in creation order (1 for the first). Lines do not count,
//! so adding a `filter`, an output or any operation of another kind, anywhere, renames
//! nothing; adding an operation of the *same* kind *before* another one in the *same* file
//! renumbers the later ones, which is why parts worth keeping across upgrades should be named.
//!
//! # Matching on restart
//!
//! A state saved under a name this job still has is restored when its kind, its format
//! version and its key and value types (`std::any::type_name`, compared without module
//! paths when they differ only by them) are the same; otherwise `start()` refuses with
//! [`Error::Checkpoint`] naming the operation. A saved state no operation has any more is
//! dropped with a warning; an operation with no saved state starts empty. Names given to
//! [`StreamingContext::reset_state`](crate::StreamingContext::reset_state) or in
//! [`RESET_STATE_ENV`] start empty whatever was saved; a state given to
//! [`StreamingContext::migrate_state`](crate::StreamingContext::migrate_state) is converted from
//! its old types. Checkpoints of format 1 (before names) are still read, matched by position as
//! they were written.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::Location;
use std::path::Path;
use std::sync::Arc;

use crate::checkpoint::chain::{Chain, ChainStats, DeltaPolicy, Encoded, Link};
use crate::checkpoint::{Checkpointed, Parts};
use crate::error::{Error, Result};
use crate::sync::LockExt;
use crate::time::Time;

/// Environment variable naming states to start empty, separated by commas, as
/// [`StreamingContext::reset_state`](crate::StreamingContext::reset_state) does: the escape
/// hatch for a packaged job whose checkpoint holds a state it can no longer read.
pub const RESET_STATE_ENV: &str = "CARGO_STREAM_RESET_STATE";

/// One part's state as a checkpoint holds it (format 3; format 2 had no `delta`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SavedPart {
    /// The stable name it is matched by.
    pub(crate) name: String,
    /// The operation that saved it (`update_state_by_key`).
    pub(crate) kind: String,
    /// The version of the part's own encoding.
    pub(crate) format: u32,
    /// What the state holds, as (role, Rust type name): `("key", "alloc::string::String")`.
    pub(crate) types: Vec<(String, String)>,
    /// Where the operation was created, for messages.
    pub(crate) at: String,
    /// The encoded state: a full snapshot, or when `delta` the changes since the checkpoint
    /// the file follows (`checkpoint/chain.rs`). Once read back, always the full snapshot.
    pub(crate) state: Vec<u8>,
    /// Whether `state` is a delta.
    pub(crate) delta: bool,
    /// Once read back: the deltas to apply after `state` (not written: the files hold them).
    #[serde(skip)]
    pub(crate) chain: Chain,
}

/// The parts' states for one checkpoint, as [`Registry::save`] gives them.
pub(crate) struct SavedParts {
    pub(crate) parts: Vec<SavedPart>,
    /// The oldest checkpoint they need (the oldest full snapshot their deltas build on).
    pub(crate) base: Time,
    /// The checkpoint their deltas follow.
    pub(crate) prev: Option<Link>,
}

/// A registered part and the name it is saved under.
pub(crate) struct Named {
    part: Arc<dyn Checkpointed>,
    pub(crate) name: String,
    at: &'static Location<'static>,
    /// The index, in the graph's nodes, of the node that carries this part: the first node
    /// created after it was registered.
    node: usize,
}

impl Named {
    /// The part's kind.
    pub(crate) fn kind(&self) -> &'static str {
        self.part.kind()
    }

    /// See [`Checkpointed::enable`].
    pub(crate) fn enable(&self, dir: &Path) -> Result<()> {
        self.part.enable(dir, &self.name)
    }

    /// See [`Checkpointed::committed`].
    pub(crate) fn committed(&self, time: Time) {
        self.part.committed(time)
    }

    /// See [`Checkpointed::task_scoped`].
    pub(crate) fn task_scoped(&self) -> Option<&dyn crate::tasks::TaskScoped> {
        self.part.task_scoped()
    }

    /// `state` saved as this part's, with its name, kind, format and types.
    pub(crate) fn saved(&self, state: Vec<u8>) -> SavedPart {
        SavedPart {
            name: self.name.clone(),
            kind: self.kind().to_owned(),
            format: self.part.format(),
            types: owned(&self.part.types()),
            at: self.at.to_string(),
            state,
            delta: false,
            chain: Chain::default(),
        }
    }

    /// Why `saved` (found under this part's name) cannot be restored into it, if it cannot:
    /// another kind, format or key and value types.
    pub(crate) fn mismatch(&self, saved: &SavedPart) -> Option<String> {
        if saved.kind != self.kind() || saved.format != self.part.format() {
            return Some(format!(
                "state `{}` was saved by `{}` (format {}) at {} but is now {} (format {})",
                self.name,
                saved.kind,
                saved.format,
                saved.at,
                self.describe(),
                self.part.format()
            ));
        }
        if !same_types(&saved.types, &self.part.types()) {
            return Some(format!(
                "state {} holds {} but was saved with {}",
                self.describe(),
                show_types(&owned(&self.part.types())),
                show_types(&saved.types)
            ));
        }
        None
    }

    pub(crate) fn describe(&self) -> String {
        format!("`{}` (`{}` at {})", self.name, self.kind(), self.at)
    }
}

/// Converts a saved state (a full snapshot or a delta) into the current encoding.
type Convert = dyn Fn(Encoded<'_>) -> std::result::Result<Vec<u8>, String> + Send + Sync;

/// A conversion of a saved state whose types changed (`StreamingContext::migrate_state`).
pub(crate) struct Migration {
    /// The kinds of part it applies to.
    pub(crate) kinds: &'static [&'static str],
    /// The types the saved state must hold.
    pub(crate) from: Vec<(&'static str, &'static str)>,
    /// The types the current part must hold.
    pub(crate) to: Vec<(&'static str, &'static str)>,
    pub(crate) convert: Box<Convert>,
    pub(crate) at: &'static Location<'static>,
}

/// The graph's checkpointed parts, in creation order, with their names.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) parts: Vec<Named>,
    /// Names whose saved state is ignored (`StreamingContext::reset_state`).
    resets: Vec<String>,
    /// Conversions of saved states by name (`StreamingContext::migrate_state`).
    migrations: BTreeMap<String, Migration>,
    /// When parts write full snapshots rather than deltas.
    policy: DeltaPolicy,
    /// The last durable checkpoint: the one the next one follows.
    last: std::sync::Mutex<Option<Link>>,
}

/// Whether two type lists are the same, or differ only by module paths.
fn same_types(a: &[(String, String)], b: &[(&str, &str)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((r1, t1), (r2, t2))| r1 == r2 && (t1 == t2 || short_type(t1) == short_type(t2)))
}

fn owned(types: &[(&str, &str)]) -> Vec<(String, String)> {
    types
        .iter()
        .map(|(r, t)| (r.to_string(), t.to_string()))
        .collect()
}

impl<'a> IntoIterator for &'a Registry {
    type Item = &'a Named;
    type IntoIter = std::slice::Iter<'a, Named>;
    fn into_iter(self) -> Self::IntoIter {
        self.parts.iter()
    }
}

/// The part of a source path that stays the same when the crate moves: after the last `src/`.
fn stable_file(file: &str) -> &str {
    let file = file.trim_start_matches("./");
    match file.rfind("src/").or_else(|| file.rfind("src\\")) {
        Some(i) if i == 0 || file[..i].ends_with(['/', '\\']) => &file[i + 4..],
        _ => file,
    }
}

/// A type name without module paths: `HashMap<String, u64>` for
/// `std::collections::hash::map::HashMap<alloc::string::String, u64>`.
fn short_type(ty: &str) -> String {
    let mut out = String::with_capacity(ty.len());
    let mut ident = 0;
    let mut chars = ty.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(ident);
            continue;
        }
        out.push(c);
        if !(c.is_alphanumeric() || c == '_') {
            ident = out.len();
        }
    }
    out
}

fn show_types(types: &[(String, String)]) -> String {
    if types.is_empty() {
        return "no typed data".into();
    }
    types
        .iter()
        .map(|(role, ty)| format!("{role} `{ty}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Registry {
    /// Registers `part`, created by the code at `at`, carried by the node created next (whose
    /// index will be `nodes`).
    pub(crate) fn register(
        &mut self,
        part: Arc<dyn Checkpointed>,
        at: &'static Location<'static>,
        nodes: usize,
    ) {
        let file = stable_file(at.file());
        let rank = 1 + self
            .parts
            .iter()
            .filter(|p| p.kind() == part.kind() && stable_file(p.at.file()) == file)
            .count();
        let name = format!("{file}:{}#{rank}", part.kind());
        self.parts.push(Named {
            part,
            name,
            at,
            node: nodes,
        });
    }

    /// Names the parts carried by the node at index `node` (`totals`, then `totals#2`, ...
    /// when it carries several).
    pub(crate) fn set_name(&mut self, node: usize, name: &str, at: &Location<'_>) -> Result<()> {
        let name = name.trim();
        let problem = |why: String| Error::InvalidSetting {
            name: "DStream::name",
            why,
        };
        if name.trim().is_empty() || name.contains(',') {
            return Err(problem(format!(
                "`.name({name:?})` at {at}: a state's name must be non-empty and hold no comma"
            )));
        }
        let mine: Vec<usize> = (0..self.parts.len())
            .filter(|&i| self.parts[i].node == node)
            .collect();
        if mine.is_empty() {
            return Err(problem(format!(
                "`.name({name:?})` at {at}: this stream keeps no state; name the stream a stateful operation (`update_state_by_key`, `map_with_state`, a window with state), `text_file_stream` or a receiver with a write-ahead log returns"
            )));
        }
        for (n, &i) in mine.iter().enumerate() {
            let full = if n == 0 {
                name.to_owned()
            } else {
                format!("{name}#{}", n + 1)
            };
            if let Some(other) = self
                .parts
                .iter()
                .enumerate()
                .find(|(j, p)| !mine.contains(j) && p.name == full)
            {
                return Err(problem(format!(
                    "`.name({name:?})` at {at}: {} already has the name `{full}`; names of states must be unique",
                    other.1.describe()
                )));
            }
            self.parts[i].name = full;
        }
        Ok(())
    }

    /// Asks for `name`'s saved state to be ignored at the next restore.
    pub(crate) fn reset(&mut self, name: &str) {
        self.resets.push(name.trim().to_owned());
    }

    /// Asks for `name`'s saved state to be converted at the next restore.
    pub(crate) fn migrate(&mut self, name: &str, migration: Migration) {
        self.migrations.insert(name.trim().to_owned(), migration);
    }

    /// Sets when parts write full snapshots rather than deltas.
    pub(crate) fn set_policy(&mut self, policy: DeltaPolicy) {
        self.policy = policy;
    }

    /// Every part's state as of the end of batch `time`: a full snapshot or a delta of the
    /// last durable checkpoint, as each part decides.
    pub(crate) fn save(&self, time: Time) -> Result<SavedParts> {
        let prev = *self.last.locked();
        let mut base = time;
        let parts = self
            .parts
            .iter()
            .map(|p| {
                let saved = p
                    .part
                    .save_delta(time, prev.map(|l| l.time), &self.policy)?;
                if let Some(full) = saved.delta_of {
                    base = base.min(full);
                }
                Ok(SavedPart {
                    delta: saved.delta_of.is_some(),
                    ..p.saved(saved.bytes)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SavedParts { parts, base, prev })
    }

    /// Writes `saved`, the parts' states of batch `time`, into `dir`; returns its size. When it
    /// returns `Ok` the checkpoint is durable and the next one follows it.
    pub(crate) fn write(&self, dir: &Path, time: Time, saved: &SavedParts) -> Result<u64> {
        let written = super::file::write_chained(dir, time, &saved.parts, saved.prev, saved.base)?;
        *self.last.locked() = Some(written.link);
        Ok(written.bytes)
    }

    /// Names to reset: those asked for in code and in `env`, [`RESET_STATE_ENV`]'s value.
    fn resets(&self, env: Option<String>) -> BTreeSet<String> {
        let env = env.unwrap_or_default();
        self.resets
            .iter()
            .map(String::as_str)
            .chain(env.split(','))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Gives each part its saved state from the checkpoint of batch `time` in `dir`.
    pub(crate) fn restore(&self, dir: &Path, time: Time, saved: Parts) -> Result<()> {
        let resets = self.resets(std::env::var(RESET_STATE_ENV).ok());
        let refuse = |message: String| Error::Checkpoint {
            dir: dir.to_owned(),
            message,
        };
        let known: BTreeSet<&str> = self
            .parts
            .iter()
            .map(|p| p.name.as_str())
            .chain(match &saved {
                Parts::Positional(_) => Vec::new(),
                Parts::Named(s) => s.iter().map(|s| s.name.as_str()).collect(),
            })
            .collect();
        if let Some((what, unknown)) = resets
            .iter()
            .map(|r| ("reset", r))
            .chain(self.migrations.keys().map(|m| ("migrate", m)))
            .find(|(_, r)| !known.contains(r.as_str()))
        {
            return Err(refuse(format!(
                "cannot {what} state `{unknown}`: neither this job nor its checkpoint has a state of that name; the names are {}",
                known
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        match saved {
            Parts::Positional(saved) => self.restore_positional(time, saved, &resets, refuse),
            Parts::Named(saved) => self.restore_named(time, saved, &resets, refuse),
        }
    }

    /// A format-1 checkpoint: parts in creation order, matched by position and kind.
    fn restore_positional(
        &self,
        time: Time,
        saved: Vec<(String, Vec<u8>)>,
        resets: &BTreeSet<String>,
        refuse: impl Fn(String) -> Error,
    ) -> Result<()> {
        let kinds = |k: &mut dyn Iterator<Item = String>| k.collect::<Vec<_>>().join(", ");
        if self.parts.len() != saved.len()
            || self
                .parts
                .iter()
                .zip(&saved)
                .any(|(p, (k, _))| p.kind() != k)
        {
            return Err(refuse(format!(
                "it was written by a different job: it holds [{}] but this job has [{}] (a checkpoint of format 1, from before states had names, is matched by position); use a new checkpoint directory for a changed job, or run the old job once with this runtime to rewrite it with names",
                kinds(&mut saved.iter().map(|(k, _)| k.clone())),
                kinds(&mut self.parts.iter().map(|p| p.kind().to_owned())),
            )));
        }
        for (part, (_, mut bytes)) in self.parts.iter().zip(saved) {
            if resets.contains(&part.name) {
                tracing::warn!(state = %part.name, "state reset as asked: it starts empty");
                continue;
            }
            if let Some(m) = self.migrations.get(&part.name) {
                bytes = (m.convert)(Encoded::Full(&bytes)).map_err(|e| {
                    refuse(format!(
                        "cannot migrate state {}: the saved state does not decode as the old types: {e}",
                        part.describe()
                    ))
                })?;
            }
            part.part
                .restore(&bytes)
                .map_err(|e| refuse(format!("cannot restore state {}: {e}", part.describe())))?;
        }
        tracing::info!(
            batch = time.millis(),
            parts = self.parts.len(),
            "state restored from a checkpoint of format 1 (matched by position)"
        );
        Ok(())
    }

    fn restore_named(
        &self,
        time: Time,
        saved: Vec<SavedPart>,
        resets: &BTreeSet<String>,
        refuse: impl Fn(String) -> Error,
    ) -> Result<()> {
        let mut by_name: BTreeMap<&str, &SavedPart> = BTreeMap::new();
        for s in &saved {
            by_name.entry(s.name.as_str()).or_insert(s);
        }
        let reset_hint = |name: &str| {
            format!(
                "to start it empty, call `ssc.reset_state(\"{name}\")` or set `{RESET_STATE_ENV}={name}`"
            )
        };
        // Check every match before restoring anything.
        let mut plan = Vec::new();
        for part in &self.parts {
            if resets.contains(&part.name) {
                continue;
            }
            let Some(s) = by_name.get(part.name.as_str()) else {
                continue;
            };
            let was = format!("`{}` at {}", s.kind, s.at);
            if s.kind != part.kind() {
                return Err(refuse(format!(
                    "state `{}` was saved by {was} but is now {}; give the new operation another name with `.name(...)`, or {}",
                    part.name,
                    part.describe(),
                    reset_hint(&part.name)
                )));
            }
            if s.format != part.part.format() {
                return Err(refuse(format!(
                    "state {} was saved in format {} and this runtime reads format {}; {}",
                    part.describe(),
                    s.format,
                    part.part.format(),
                    reset_hint(&part.name)
                )));
            }
            let now = part.part.types();
            let mut convert = None;
            if let Some(m) = self.migrations.get(&part.name) {
                if !m.kinds.contains(&part.kind()) || !same_types(&s.types, &m.from) {
                    return Err(refuse(format!(
                        "the migration of state {} given at {} converts {} of {}, but the checkpoint holds {} of `{}`",
                        part.describe(),
                        m.at,
                        show_types(&owned(&m.from)),
                        m.kinds.join(" or "),
                        show_types(&s.types),
                        s.kind
                    )));
                }
                if !same_types(&owned(&now), &m.to) {
                    return Err(refuse(format!(
                        "the migration of state {} given at {} converts to {} but the operation holds {}",
                        part.describe(),
                        m.at,
                        show_types(&owned(&m.to)),
                        show_types(&owned(&now))
                    )));
                }
                convert = Some(&m.convert);
            } else if !same_types(&s.types, &now) {
                return Err(refuse(format!(
                    "the type of state {} changed: the checkpoint holds {} but this job has {}; keep the old types, convert the state with `ssc.migrate_state(\"{}\", ...)`, or {}",
                    part.describe(),
                    show_types(&s.types),
                    show_types(&owned(&now)),
                    part.name,
                    reset_hint(&part.name)
                )));
            } else if s.types != owned(&now) {
                tracing::info!(state = %part.name, "state types moved to other modules; restored as the same types");
            }
            plan.push((part, *s, convert));
        }
        let mut head = None;
        for (part, s, convert) in &plan {
            let cannot_migrate = |e: String| {
                refuse(format!(
                    "cannot migrate state {}: the saved state does not decode as the old types: {e}",
                    part.describe()
                ))
            };
            let cannot_read = |e: Error| {
                refuse(format!(
                    "cannot read state {} from the checkpoint (did its type change shape?): {e}; {}",
                    part.describe(),
                    reset_hint(&part.name)
                ))
            };
            let converted;
            let bytes = match convert {
                None => &s.state,
                Some(convert) => {
                    converted = convert(Encoded::Full(&s.state)).map_err(cannot_migrate)?;
                    &converted
                }
            };
            part.part.restore(bytes).map_err(cannot_read)?;
            for delta in &s.chain.deltas {
                let converted;
                let bytes = match convert {
                    None => delta,
                    Some(convert) => {
                        converted = convert(Encoded::Delta(delta)).map_err(cannot_migrate)?;
                        &converted
                    }
                };
                part.part.apply_delta(bytes).map_err(cannot_read)?;
            }
            match (convert, s.chain.head) {
                (Some(_), _) => {
                    // Its next checkpoint is a full snapshot in the new types.
                    tracing::info!(state = %part.name, deltas = s.chain.deltas.len(), "state migrated to its new types");
                }
                (None, Some(link)) => {
                    head = Some(link);
                    part.part.resume(
                        link.time,
                        &ChainStats {
                            full_at: s.chain.full_at,
                            full_bytes: s.state.len() as u64,
                            deltas: s.chain.deltas.len() as u32,
                            delta_bytes: s.chain.deltas.iter().map(|d| d.len() as u64).sum(),
                        },
                    );
                }
                (None, None) => {}
            }
        }
        *self.last.locked() = head;
        let mine: BTreeSet<&str> = self.parts.iter().map(|p| p.name.as_str()).collect();
        let dropped: Vec<&SavedPart> = saved
            .iter()
            .filter(|s| !mine.contains(s.name.as_str()))
            .collect();
        if plan.is_empty()
            && !dropped.is_empty()
            && !self.parts.is_empty()
            && !dropped.iter().any(|s| resets.contains(&s.name))
        {
            return Err(refuse(format!(
                "it was written by a different job: none of its states [{}] is a state of this job [{}]; use a new checkpoint directory for a changed job, give the operations their old names with `.name(...)`, or drop the old states with `{RESET_STATE_ENV}={}`",
                dropped
                    .iter()
                    .map(|s| format!("`{}`", s.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.parts
                    .iter()
                    .map(|p| format!("`{}`", p.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                dropped
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )));
        }
        for part in &self.parts {
            if resets.contains(&part.name) {
                tracing::warn!(state = %part.name, at = %part.at, "state reset as asked: it starts empty");
            } else if !by_name.contains_key(part.name.as_str()) {
                tracing::info!(state = %part.name, at = %part.at, "new state: it starts empty");
            }
        }
        for s in dropped {
            if resets.contains(&s.name) {
                tracing::info!(state = %s.name, "saved state dropped as asked");
            } else {
                tracing::warn!(
                    state = %s.name,
                    kind = %s.kind,
                    saved_at = %s.at,
                    "dropping the saved state of an operation this job no longer has; if it was renamed, give it its old name with `.name(\"{}\")`",
                    s.name
                );
            }
        }
        tracing::info!(
            batch = time.millis(),
            restored = plan.len(),
            "state restored from checkpoint"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Graph;
    use crate::state::store::Store;

    #[test]
    fn file_names_are_kept_after_the_last_src() {
        assert_eq!(stable_file("src/main.rs"), "main.rs");
        assert_eq!(stable_file("examples/src/bin/totals.rs"), "bin/totals.rs");
        assert_eq!(stable_file("/home/u/job/src/jobs/a.rs"), "jobs/a.rs");
        assert_eq!(
            stable_file("runtime/tests/it/upgrade.rs"),
            "runtime/tests/it/upgrade.rs"
        );
        assert_eq!(stable_file("mysrc/main.rs"), "mysrc/main.rs");
    }

    #[test]
    fn short_types_drop_module_paths() {
        assert_eq!(
            short_type("std::collections::hash::map::HashMap<alloc::string::String, u64>"),
            "HashMap<String, u64>"
        );
        assert_eq!(short_type("(alloc::string::String, i32)"), "(String, i32)");
        assert_eq!(short_type("u64"), "u64");
    }

    fn store(kind: &'static str) -> Arc<Store<String, u64>> {
        Arc::new(Store::new(kind, 2, Vec::new()))
    }

    #[track_caller]
    fn here() -> &'static Location<'static> {
        Location::caller()
    }

    #[test]
    fn default_names_rank_parts_of_a_kind_in_a_file() {
        let mut r = Registry::default();
        r.register(store("update_state_by_key"), here(), 0);
        r.register(store("map_with_state"), here(), 1);
        r.register(store("update_state_by_key"), here(), 2);
        let names: Vec<&str> = r.parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "checkpoint/names.rs:update_state_by_key#1",
                "checkpoint/names.rs:map_with_state#1",
                "checkpoint/names.rs:update_state_by_key#2"
            ]
        );
        r.set_name(2, "totals", here()).unwrap();
        let err = r.set_name(0, "totals", here()).unwrap_err().to_string();
        assert!(err.contains("already has the name `totals`"), "{err}");
        let err = r.set_name(7, "x", here()).unwrap_err().to_string();
        assert!(err.contains("this stream keeps no state"), "{err}");
    }

    #[test]
    fn a_default_name_taken_by_a_given_one_is_a_problem() {
        let mut g = Graph::default();
        g.register_checkpointed_at(store("update_state_by_key"), here());
        g.name_state(0, "checkpoint/names.rs:update_state_by_key#2", here());
        assert!(g.problems.is_empty());
        g.register_checkpointed_at(store("update_state_by_key"), here());
        let err = g.problems.first().expect("a problem").to_string();
        assert!(err.contains("has the default name of"), "{err}");
    }

    #[test]
    fn resets_come_from_code_and_the_environment() {
        let mut r = Registry::default();
        r.reset(" totals ");
        assert_eq!(
            r.resets(Some(" a, ,b".into())),
            ["a", "b", "totals"].map(String::from).into_iter().collect()
        );
    }

    #[test]
    fn a_format_1_checkpoint_is_restored_by_position() {
        let old = store("update_state_by_key");
        old.load([("a".to_string(), 7u64, 1000u64)].into_iter());
        let bytes = old.save(Time(1000)).unwrap();
        let mut r = Registry::default();
        let new = store("update_state_by_key");
        r.register(new.clone(), here(), 0);
        let dir = Path::new("/nonexistent");
        r.restore(
            dir,
            Time(1000),
            Parts::Positional(vec![("update_state_by_key".into(), bytes.clone())]),
        )
        .unwrap();
        assert_eq!(new.snapshot().concat(), vec![("a".to_string(), 7)]);
        let err = r
            .restore(
                dir,
                Time(1000),
                Parts::Positional(vec![("map_with_state".into(), bytes)]),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("written by a different job"), "{err}");
    }
}

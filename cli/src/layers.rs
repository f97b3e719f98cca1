//! Configuration layers, one routine for all of them: a table of a TOML file read into its
//! typed layer (an unknown key or a bad value names the file, line and column, from the TOML
//! parser's spans), environment variables read with each field's own type, and layers merged
//! low to high. [`crate::config`] (package settings) and [`crate::cluster::profile`] (cluster
//! profiles) both layer through here.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A TOML file's text, kept to turn the parser's spans into lines and columns.
#[derive(Clone, Debug)]
pub struct TomlFile {
    /// Where it was read from.
    pub path: PathBuf,
    text: String,
}

impl TomlFile {
    /// Reads `path`; `None` when there is no such file.
    pub fn read(path: &Path) -> anyhow::Result<Option<TomlFile>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(TomlFile::new(path, text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("failed to read `{}`", path.display())))
            }
        }
    }

    /// A file's text as read from `path`.
    pub fn new(path: &Path, text: String) -> TomlFile {
        TomlFile {
            path: path.to_owned(),
            text,
        }
    }

    /// The document with the spans of its keys and values.
    pub fn document(&self) -> anyhow::Result<Spanned<DeTable<'_>>> {
        DeTable::parse(&self.text).map_err(|e| self.error(e, "failed to parse"))
    }

    /// `` `PATH`, line L, column C `` for a span of the text.
    pub fn at(&self, span: Range<usize>) -> String {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        format!("`{}`, line {line}, column {column}", self.path.display())
    }

    /// Reads `value`, a part of [`TomlFile::document`], as a `T`. An unknown key or a bad value
    /// is an error `"{what} in PATH, line L, column C"` caused by the parser's message.
    pub fn typed<T: DeserializeOwned>(
        &self,
        value: Spanned<DeValue<'_>>,
        what: &str,
    ) -> anyhow::Result<T> {
        self.seeded(PhantomData::<T>, value, what)
    }

    /// The whole document as a `T`, like [`TomlFile::typed`].
    pub fn whole<T: DeserializeOwned>(&self, what: &str) -> anyhow::Result<T> {
        let document = self.document()?;
        let span = document.span();
        self.typed(
            Spanned::new(span, DeValue::Table(document.into_inner())),
            what,
        )
    }

    /// [`TomlFile::typed`] with a seed that picks the type (a profile's kind, say).
    pub fn seeded<'i, S: DeserializeSeed<'i>>(
        &self,
        seed: S,
        value: Spanned<DeValue<'i>>,
        what: &str,
    ) -> anyhow::Result<S::Value> {
        seed.deserialize(toml::de::ValueDeserializer::from(value))
            .map_err(|e| self.error(e, what))
    }

    fn error(&self, e: toml::de::Error, what: &str) -> anyhow::Error {
        let at = match e.span() {
            Some(span) => self.at(span),
            None => format!("`{}`", self.path.display()),
        };
        anyhow::anyhow!("{}", e.message().trim_end()).context(format!("{what} in {at}"))
    }
}

/// The table `key` of a document, its entries by name (none when the document has no such
/// table); an error naming where `key` is when it is not a table.
pub fn table_of<'i>(
    file: &TomlFile,
    document: &Spanned<DeTable<'i>>,
    key: &str,
) -> anyhow::Result<BTreeMap<String, Spanned<DeValue<'i>>>> {
    let Some(value) = document.get_ref().get(key) else {
        return Ok(BTreeMap::new());
    };
    match value.get_ref() {
        DeValue::Table(table) => Ok(table
            .iter()
            .map(|(k, v)| (k.get_ref().to_string(), v.clone()))
            .collect()),
        _ => anyhow::bail!("`{key}` in {} is not a table", file.at(value.span())),
    }
}

/// Lays `top` over `base`: a key `top` sets replaces `base`'s, except tables (such as `env`,
/// `conf`, `upload`), which merge key by key. This is the one merge of every layer.
pub fn overlay<T: Serialize + DeserializeOwned>(
    base: &T,
    top: &impl Serialize,
) -> anyhow::Result<T> {
    let mut merged = to_table(base)?;
    merge_tables(&mut merged, to_table(top)?);
    toml::Value::Table(merged)
        .try_into()
        .context("failed to merge configuration layers")
}

fn to_table(value: &impl Serialize) -> anyhow::Result<toml::Table> {
    match toml::Value::try_from(value).context("failed to read a configuration layer")? {
        toml::Value::Table(table) => Ok(table),
        other => anyhow::bail!("a configuration layer is not a table: {other}"),
    }
}

fn merge_tables(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(low)), toml::Value::Table(high)) => merge_tables(low, high),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The variables named `PREFIX<KEY>` as a layer (`None` when there are none). `KEY` is a
/// field's name in capitals with `-` as `_`; `<TABLE>_<KEY>` sets a key of the table field
/// `TABLE` (one of `tables`, in capitals). Each value is parsed as its field's own type, so
/// `4` is a string for a string field and a number for a number field.
pub fn from_env<T: DeserializeOwned>(prefix: &str, tables: &[&str]) -> anyhow::Result<Option<T>> {
    from_vars(PhantomData::<T>, prefix, tables, env_vars(prefix))
}

/// The variables whose names start with `prefix`.
pub fn env_vars(prefix: &str) -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(prefix))
        .collect()
}

/// [`from_env`] over the given variables, with a seed that picks the type.
pub fn from_vars<'de, S: DeserializeSeed<'de>>(
    seed: S,
    prefix: &str,
    tables: &[&str],
    vars: Vec<(String, String)>,
) -> anyhow::Result<Option<S::Value>> {
    let field = |name: &str| name.to_ascii_lowercase().replace('_', "-");
    let mut root: BTreeMap<String, EnvValue> = BTreeMap::new();
    for (var, value) in vars {
        let Some(rest) = var.strip_prefix(prefix) else {
            continue;
        };
        let text = EnvValue::Text {
            var: var.clone(),
            value,
        };
        match tables
            .iter()
            .find_map(|t| Some((*t, rest.strip_prefix(t)?.strip_prefix('_')?)))
        {
            Some((table, key)) => {
                let entry = root
                    .entry(field(table))
                    .or_insert_with(|| EnvValue::Table(BTreeMap::new()));
                if let EnvValue::Table(table) = entry {
                    table.insert(field(key), text);
                }
            }
            None => {
                root.insert(field(rest), text);
            }
        }
    }
    if root.is_empty() {
        return Ok(None);
    }
    seed.deserialize(EnvValue::Table(root))
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{e}").context(format!("bad `{prefix}*` variable")))
}

/// The keys a struct takes, as its `Deserialize` derive lists them.
pub fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut keys: &'static [&'static str] = &[];
    let _ = T::deserialize(KeyNames(&mut keys));
    keys
}

/// A deserializer that only notes the fields a struct asks for.
struct KeyNames<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for KeyNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("keys noted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// An environment layer before it is typed: variables' texts, in tables.
enum EnvValue {
    Text { var: String, value: String },
    Table(BTreeMap<String, EnvValue>),
}

impl EnvValue {
    fn parse<T: std::str::FromStr>(self, what: &str) -> Result<T, de::value::Error> {
        match self {
            EnvValue::Text { var, value } => value
                .parse()
                .map_err(|_| de::Error::custom(format!("`{var}={value}`: expected {what}"))),
            EnvValue::Table(_) => Err(de::Error::custom(format!("expected {what}, not a table"))),
        }
    }
}

impl<'de> IntoDeserializer<'de, de::value::Error> for EnvValue {
    type Deserializer = EnvValue;

    fn into_deserializer(self) -> EnvValue {
        self
    }
}

/// Numbers and booleans parsed as the field asks, from the variable's text.
macro_rules! parsed {
    ($($method:ident => $visit:ident $ty:ty, $what:literal;)*) => {$(
        fn $method<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            visitor.$visit(self.parse::<$ty>($what)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for EnvValue {
    type Error = de::value::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            EnvValue::Text { value, .. } => visitor.visit_string(value),
            EnvValue::Table(table) => {
                visitor.visit_map(de::value::MapDeserializer::new(table.into_iter()))
            }
        }
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    parsed! {
        deserialize_bool => visit_bool bool, "`true` or `false`";
        deserialize_u8 => visit_u8 u8, "a number";
        deserialize_u16 => visit_u16 u16, "a port number";
        deserialize_u32 => visit_u32 u32, "a number";
        deserialize_u64 => visit_u64 u64, "a number";
        deserialize_i8 => visit_i8 i8, "a number";
        deserialize_i16 => visit_i16 i16, "a number";
        deserialize_i32 => visit_i32 i32, "a number";
        deserialize_i64 => visit_i64 i64, "a number";
        deserialize_f32 => visit_f32 f32, "a number";
        deserialize_f64 => visit_f64 f64, "a number";
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize, Serialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Layer {
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        on: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        env: Option<BTreeMap<String, String>>,
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_values_take_their_field_type() {
        let read = |tables: &[&str], pairs: &[(&str, &str)]| {
            from_vars(PhantomData::<Layer>, "X_", tables, vars(pairs))
        };
        let layer = read(
            &[],
            &[("X_VERSION", "4"), ("X_PORT", "2222"), ("X_ON", "true")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(layer.version.as_deref(), Some("4"));
        assert_eq!(layer.port, Some(2222));
        assert_eq!(layer.on, Some(true));
        let err = read(&[], &[("X_PORT", "ssh")]).unwrap_err();
        assert!(format!("{err:#}").contains("`X_PORT=ssh`"), "{err:#}");
        let err = read(&[], &[("X_PORTS", "1")]).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `ports`"),
            "{err:#}"
        );
        let layer = read(&["ENV"], &[("X_ENV_A_B", "1")]).unwrap().unwrap();
        assert_eq!(layer.env.unwrap()["a-b"], "1");
        assert_eq!(keys_of::<Layer>(), ["version", "port", "on", "env"]);
    }

    #[test]
    fn typed_tables_name_line_and_column() {
        let file = TomlFile::new(
            Path::new("S.toml"),
            "[a]\nversion = \"1\"\n\n[b]\nversion = \"1\"\n  prot = 22\n".into(),
        );
        let doc = file.document().unwrap();
        let a = table_of(&file, &doc, "a").unwrap();
        assert_eq!(a.keys().collect::<Vec<_>>(), ["version"]);
        let b = doc.get_ref().get("b").unwrap().clone();
        let err = file.typed::<Layer>(b, "bad `[b]`").unwrap_err();
        assert!(
            format!("{err:#}").contains("bad `[b]` in `S.toml`, line 6, column 3"),
            "{err:#}"
        );
    }

    #[test]
    fn tables_merge_key_by_key_and_values_replace() {
        let base = Layer {
            version: Some("1".into()),
            env: Some([("A".to_string(), "1".to_string())].into()),
            ..Layer::default()
        };
        let top = Layer {
            port: Some(2),
            version: Some("2".into()),
            env: Some([("B".to_string(), "2".to_string())].into()),
            ..Layer::default()
        };
        let merged = overlay(&base, &top).unwrap();
        assert_eq!(merged.version.as_deref(), Some("2"));
        assert_eq!(merged.port, Some(2));
        assert_eq!(merged.env.unwrap().len(), 2);
    }
}

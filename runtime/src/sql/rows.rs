//! [`Rows`]: the Arrow shape of a `serde` row type, and the conversion of rows to and from Arrow
//! record batches (Spark's `rdd.toDF()` and `df.as[T]`).

use std::marker::PhantomData;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, new_null_array};
use datafusion::arrow::compute::{can_cast_types, cast};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_arrow::schema::{SchemaLike, TracingOptions};

use crate::error::{Error, Result};

/// The column a row type that is not a struct (a `String`, a number) is stored in, as Spark
/// names the column of a `Dataset[String]`.
pub const VALUE_COLUMN: &str = "value";

/// The Arrow schema of the row type `T`, traced from its `serde` implementation, and the
/// conversion of `T` rows to and from Arrow [`RecordBatch`]es.
///
/// - A struct's fields are the columns, in order, under their `serde` names.
/// - A tuple's elements are the columns `0`, `1`, ...; a query's result is read into a tuple by
///   position, whatever the columns are called.
/// - Any other type (`String`, `u64`, ...) is one column named [`VALUE_COLUMN`]; a query's
///   one-column result is read into it whatever the column is called.
///
/// Strings are Arrow `Utf8`, integers keep their width and sign, `Option`s are nullable.
///
/// Reading a record batch into `T` matches columns by name (by position for tuples and
/// single values) and casts each to `T`'s type, so `COUNT(*)` (an `Int64`) reads into a `u64`.
///
/// # Examples
///
/// ```
/// use cargo_stream_runtime::sql::Rows;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Click {
///     user: String,
///     page: u32,
/// }
///
/// let rows = Rows::<Click>::new()?;
/// assert_eq!(rows.column_names(), vec!["user", "page"]);
/// let clicks = vec![Click { user: "ann".into(), page: 7 }];
/// let batch = rows.to_record_batch(&clicks)?;
/// assert_eq!(batch.num_rows(), 1);
/// assert_eq!(rows.from_record_batch(&batch)?, clicks);
///
/// let words = Rows::<String>::new()?;
/// assert_eq!(words.column_names(), vec!["value"]);
/// # Ok::<(), cargo_stream_runtime::Error>(())
/// ```
pub struct Rows<T> {
    fields: Vec<FieldRef>,
    schema: SchemaRef,
    shape: Shape,
    _rows: PhantomData<fn() -> T>,
}

impl<T> Clone for Rows<T> {
    fn clone(&self) -> Self {
        Rows {
            fields: self.fields.clone(),
            schema: self.schema.clone(),
            shape: self.shape,
            _rows: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Rows<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("type", &std::any::type_name::<T>())
            .field("schema", &self.schema)
            .finish()
    }
}

/// How a row type maps to columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Named fields, matched by name.
    Struct,
    /// A tuple: columns matched by position.
    Tuple,
    /// A single value wrapped in a [`VALUE_COLUMN`] column, matched by position.
    Value,
}

/// A single value as a one-column row (for tracing and deserializing).
#[derive(Serialize, Deserialize)]
struct Value<T> {
    value: T,
}

/// A single value by reference as a one-column row (for serializing without a copy).
#[derive(Serialize)]
struct ValueRef<'a, T> {
    value: &'a T,
}

fn tracing_options() -> TracingOptions {
    // DataFusion's own string, list and binary types, so queries need no casts; unit enum
    // variants as their names, as users write them in SQL.
    TracingOptions::default()
        .strings_as_large_utf8(false)
        .sequence_as_large_list(false)
        .bytes_as_large_binary(false)
        .enums_without_data_as_strings(true)
}

impl<T: Serialize + DeserializeOwned> Rows<T> {
    /// Traces `T`'s schema from its `serde` implementation.
    ///
    /// Fails for types `serde_arrow` cannot trace from the type alone (for example a field of
    /// `serde_json::Value`), naming the type.
    pub fn new() -> Result<Self> {
        let (fields, shape) = match Vec::<FieldRef>::from_type::<T>(tracing_options()) {
            Ok(fields) => {
                let tuple = !fields.is_empty()
                    && fields
                        .iter()
                        .enumerate()
                        .all(|(i, f)| f.name() == &i.to_string());
                (fields, if tuple { Shape::Tuple } else { Shape::Struct })
            }
            Err(root) => match Vec::<FieldRef>::from_type::<Value<T>>(tracing_options()) {
                Ok(fields) => (fields, Shape::Value),
                Err(_) => return Err(conversion::<T>(root)),
            },
        };
        let schema = Arc::new(Schema::new(fields.clone()));
        Ok(Rows {
            fields,
            schema,
            shape,
            _rows: PhantomData,
        })
    }

    /// The Arrow schema of a record batch of `T` rows.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The column names, in order.
    pub fn column_names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.name().as_str()).collect()
    }

    /// The rows as one record batch of [`schema`](Self::schema).
    pub fn to_record_batch(&self, rows: &[T]) -> Result<RecordBatch> {
        let batch = match self.shape {
            Shape::Value => {
                let wrapped: Vec<ValueRef<'_, T>> =
                    rows.iter().map(|value| ValueRef { value }).collect();
                serde_arrow::to_record_batch(&self.fields, &wrapped)
            }
            Shape::Struct | Shape::Tuple => serde_arrow::to_record_batch(&self.fields, &rows),
        };
        batch.map_err(conversion::<T>)
    }

    /// Reads `batch` into rows: columns matched to `T`'s by name (by position for tuples and
    /// single values) and cast to `T`'s types; a missing nullable column reads as `None`.
    pub fn from_record_batch(&self, batch: &RecordBatch) -> Result<Vec<T>> {
        let batch = self.adapt(batch).map_err(|m| Error::SqlConversion {
            type_name: std::any::type_name::<T>(),
            message: m,
        })?;
        match self.shape {
            Shape::Value => serde_arrow::from_record_batch::<Vec<Value<T>>>(&batch)
                .map(|v| v.into_iter().map(|v| v.value).collect()),
            Shape::Struct | Shape::Tuple => serde_arrow::from_record_batch::<Vec<T>>(&batch),
        }
        .map_err(conversion::<T>)
    }

    /// Checks, without data, that a result of `schema` can be read into `T`: every column `T`
    /// needs is there (or nullable) and can be cast. The message names both sides.
    pub fn check_readable(&self, schema: &Schema) -> std::result::Result<(), String> {
        let plan = self.columns_for(schema)?;
        for (field, source) in self.fields.iter().zip(plan) {
            if let Some(i) = source {
                let from = schema.field(i).data_type();
                if !castable(from, field.data_type()) {
                    return Err(format!(
                        "column `{}` is {from} but `{}` needs {} for field `{}`",
                        schema.field(i).name(),
                        short_type_name::<T>(),
                        field.data_type(),
                        field.name()
                    ));
                }
            }
        }
        Ok(())
    }

    /// For each of `T`'s fields, the index of the column of `schema` it reads from, or `None`
    /// for a missing nullable field.
    fn columns_for(&self, schema: &Schema) -> std::result::Result<Vec<Option<usize>>, String> {
        let names = || {
            schema
                .fields()
                .iter()
                .map(|f| format!("`{}`", f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.shape != Shape::Struct {
            if schema.fields().len() != self.fields.len() {
                return Err(format!(
                    "the result has {} column(s) ({}) but `{}` reads {} by position",
                    schema.fields().len(),
                    names(),
                    short_type_name::<T>(),
                    self.fields.len()
                ));
            }
            return Ok((0..self.fields.len()).map(Some).collect());
        }
        self.fields
            .iter()
            .map(|field| match schema.index_of(field.name()) {
                Ok(i) => Ok(Some(i)),
                Err(_) if field.is_nullable() => Ok(None),
                Err(_) => Err(format!(
                    "no column `{}` for field `{}` of `{}`: the result has {}; name it with `AS {}`",
                    field.name(),
                    field.name(),
                    short_type_name::<T>(),
                    names(),
                    field.name()
                )),
            })
            .collect()
    }

    /// `batch` with `T`'s schema: columns picked, cast and renamed.
    fn adapt(&self, batch: &RecordBatch) -> std::result::Result<RecordBatch, String> {
        if batch.schema() == self.schema {
            return Ok(batch.clone());
        }
        let plan = self.columns_for(&batch.schema())?;
        let columns = self
            .fields
            .iter()
            .zip(plan)
            .map(|(field, source)| -> std::result::Result<ArrayRef, String> {
                let Some(i) = source else {
                    return Ok(new_null_array(field.data_type(), batch.num_rows()));
                };
                let column = batch.column(i);
                if column.data_type() == field.data_type() {
                    return Ok(column.clone());
                }
                cast(column, field.data_type()).map_err(|e| {
                    format!(
                        "cannot cast column `{}` to {} for field `{}`: {e}",
                        batch.schema().field(i).name(),
                        field.data_type(),
                        field.name()
                    )
                })
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // The result's nullability may be looser than `T`'s: build on a schema that admits
        // nulls and let deserialization report a null in a non-`Option` field by name.
        let loose = Arc::new(Schema::new(
            self.fields
                .iter()
                .map(|f| {
                    Field::new(f.name(), f.data_type().clone(), true)
                        .with_metadata(f.metadata().clone())
                })
                .collect::<Vec<_>>(),
        ));
        RecordBatch::try_new(loose, columns).map_err(|e| e.to_string())
    }
}

fn castable(from: &DataType, to: &DataType) -> bool {
    from == to || can_cast_types(from, to)
}

fn conversion<T>(e: serde_arrow::Error) -> Error {
    Error::SqlConversion {
        type_name: std::any::type_name::<T>(),
        message: e.to_string(),
    }
}

/// `T`'s name without its module path, as users wrote it.
pub(crate) fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::new();
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else if c == ':' {
            segment.clear();
        } else {
            out.push_str(&segment);
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(&segment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct WordCount {
        word: String,
        count: u64,
        note: Option<String>,
    }

    #[test]
    fn struct_rows_round_trip() {
        let rows = Rows::<WordCount>::new().unwrap();
        let data = vec![
            WordCount {
                word: "a".into(),
                count: 2,
                note: None,
            },
            WordCount {
                word: "b".into(),
                count: 1,
                note: Some("x".into()),
            },
        ];
        let batch = rows.to_record_batch(&data).unwrap();
        assert_eq!(batch.schema().field(0).data_type(), &DataType::Utf8);
        assert_eq!(rows.from_record_batch(&batch).unwrap(), data);
    }

    #[test]
    fn tuples_read_by_position_and_values_by_column() {
        let pairs = Rows::<(String, i64)>::new().unwrap();
        assert_eq!(pairs.column_names(), vec!["0", "1"]);
        let words = Rows::<String>::new().unwrap();
        let batch = words
            .to_record_batch(&["x".to_string(), "y".to_string()])
            .unwrap();
        assert_eq!(
            words.from_record_batch(&batch).unwrap(),
            vec!["x".to_string(), "y".to_string()]
        );
    }

    #[test]
    fn reading_casts_and_fills_missing_nullable_columns() {
        let source = Rows::<(String, i64)>::new().unwrap();
        let batch = source.to_record_batch(&[("a".into(), 3)]).unwrap();
        // Rename columns to `word`, `count` as a query would.
        let named = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("word", DataType::Utf8, false),
                Field::new("count", DataType::Int64, false),
            ])),
            batch.columns().to_vec(),
        )
        .unwrap();
        let rows = Rows::<WordCount>::new().unwrap();
        assert_eq!(
            rows.from_record_batch(&named).unwrap(),
            vec![WordCount {
                word: "a".into(),
                count: 3,
                note: None
            }]
        );
        let err = Rows::<(String, i64, i64)>::new()
            .unwrap()
            .check_readable(&named.schema())
            .unwrap_err();
        assert!(err.contains("reads 3 by position"), "{err}");
    }

    #[test]
    fn missing_column_names_the_field_and_the_fix() {
        let rows = Rows::<WordCount>::new().unwrap();
        let schema = Schema::new(vec![
            Field::new("word", DataType::Utf8, false),
            Field::new("cnt", DataType::Int64, false),
        ]);
        let err = rows.check_readable(&schema).unwrap_err();
        assert_eq!(
            err,
            "no column `count` for field `count` of `WordCount`: the result has `word`, `cnt`; name it with `AS count`"
        );
    }

    #[test]
    fn short_type_names_drop_paths() {
        assert_eq!(
            short_type_name::<Vec<(String, WordCount)>>(),
            "Vec<(String, WordCount)>"
        );
    }
}

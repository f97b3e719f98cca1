//! `Render`: how `print` and `save_as_text_files` write an element, as Scala's `toString` would.

/// Writes a value the way Spark's Scala API prints it: tuples as `(word,3)`, options as
/// `Some(x)`/`None`, strings bare. Implement it for your own types to `print` them.
///
/// ```
/// use cargo_stream_runtime::Render;
/// assert_eq!(("spark".to_string(), 3u64).rendered(), "(spark,3)");
/// assert_eq!((1, Some(2.5), None::<i32>).rendered(), "(1,Some(2.5),None)");
/// ```
pub trait Render {
    /// Appends this value's text to `out`.
    fn render(&self, out: &mut String);

    /// This value's text.
    fn rendered(&self) -> String {
        let mut s = String::new();
        self.render(&mut s);
        s
    }
}

macro_rules! render_display {
    ($($t:ty),*) => {$(
        impl Render for $t {
            fn render(&self, out: &mut String) {
                use std::fmt::Write;
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
render_display!(
    str, String, char, bool, u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

macro_rules! render_float {
    ($($t:ty),*) => {$(
        impl Render for $t {
            // Debug keeps the `.0` that Scala prints for whole doubles.
            fn render(&self, out: &mut String) {
                use std::fmt::Write;
                let _ = write!(out, "{self:?}");
            }
        }
    )*};
}
render_float!(f32, f64);

impl Render for () {
    fn render(&self, out: &mut String) {
        out.push_str("()");
    }
}

impl<T: Render + ?Sized> Render for &T {
    fn render(&self, out: &mut String) {
        (**self).render(out)
    }
}

impl<T: Render + ?Sized> Render for Box<T> {
    fn render(&self, out: &mut String) {
        (**self).render(out)
    }
}

impl<T: Render + ?Sized> Render for std::sync::Arc<T> {
    fn render(&self, out: &mut String) {
        (**self).render(out)
    }
}

impl<T: Render> Render for Option<T> {
    fn render(&self, out: &mut String) {
        match self {
            Some(v) => {
                out.push_str("Some(");
                v.render(out);
                out.push(')');
            }
            None => out.push_str("None"),
        }
    }
}

impl<T: Render> Render for Vec<T> {
    fn render(&self, out: &mut String) {
        out.push('[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            v.render(out);
        }
        out.push(']');
    }
}

macro_rules! render_tuple {
    ($($name:ident)+) => {
        impl<$($name: Render),+> Render for ($($name,)+) {
            #[allow(non_snake_case)]
            fn render(&self, out: &mut String) {
                let ($($name,)+) = self;
                out.push('(');
                let mut first = true;
                $(
                    if !first { out.push(','); }
                    first = false;
                    $name.render(out);
                )+
                let _ = first;
                out.push(')');
            }
        }
    };
}
render_tuple!(A);
render_tuple!(A B);
render_tuple!(A B C);
render_tuple!(A B C D);
render_tuple!(A B C D E);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_render_like_scala() {
        let v = ("a".to_string(), (1u64, vec![2i32, 3]), 1.0f64);
        assert_eq!(v.rendered(), "(a,(1,[2, 3]),1.0)");
    }
}

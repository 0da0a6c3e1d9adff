//! Small code generators shared by the protocol modules.

/// Declares an enum over a numeric wire field with a catch-all `Unknown(value)` variant,
/// plus lossless `From` conversions both ways (like smoltcp's `enum_with_unknown!`).
///
/// Converting a listed value through `From<$ty>` always yields the named variant, so
/// `Unknown` only ever holds values that are not listed.
macro_rules! enum_with_unknown {
    (
        $( #[$enum_attr:meta] )*
        pub enum $name:ident($ty:ty) {
            $(
                $( #[$variant_attr:meta] )*
                $variant:ident = $value:expr
            ),+ $(,)?
        }
    ) => {
        $( #[$enum_attr] )*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $(
                $( #[$variant_attr] )*
                $variant
            ),+,
            /// A value this crate has no name for.
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant ),+,
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value ),+,
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

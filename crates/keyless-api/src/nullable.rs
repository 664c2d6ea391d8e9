//! Serde for the tri-state fields of partial updates (`Option<Option<T>>`): absent, `null`, or a value.
//!
//! Used as `#[serde(default, skip_serializing_if = "Option::is_none", with = "crate::nullable")]`:
//! `None` is left out, `Some(None)` is written `null`, `Some(Some(v))` is `v`; reading a present field
//! (even `null`) gives `Some(_)`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[allow(clippy::ref_option, reason = "serde's `with` hands the field by reference")]
pub(crate) fn serialize<S, T>(value: &Option<Option<T>>, serializer: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: Serialize,
{
    match value {
        Some(inner) => inner.serialize(serializer),
        None => serializer.serialize_none(),
    }
}

pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

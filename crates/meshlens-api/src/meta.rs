//! Kubernetes-style object metadata shared by every mesh document.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// `labels:` or `annotations:` written with no value (null) are empty, as Kubernetes reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_empty", skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A field whose null value means its default (an empty map or list).
pub fn null_as_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_maps_are_empty() {
        let m: ObjectMeta = serde_json::from_str(r#"{"name":"a","labels":null,"annotations":null}"#).unwrap();
        assert!(m.labels.is_empty() && m.annotations.is_empty());
    }
}

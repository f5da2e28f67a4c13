//! The JSON shapes of `meshlens check` (`/api/v1/check`, `--pre`) and of drift (`--compare`): sections
//! of checks, each passed (√), a warning (‼) or a failure (×) with a hint; and the differences between
//! two meshes' configurations.

use serde::{Deserialize, Serialize};

/// The outcome of one check. Ordered: `Ok < Warning < Failure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Warning,
    Failure,
}

impl CheckStatus {
    /// `√`, `‼` or `×`, as Linkerd's `check` prints them.
    pub fn mark(self) -> &'static str {
        match self {
            CheckStatus::Ok => "√",
            CheckStatus::Warning => "‼",
            CheckStatus::Failure => "×",
        }
    }
}

/// One check line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub status: CheckStatus,
    /// What holds (or does not): one sentence naming the resource.
    pub description: String,
    /// The numbers and `file:line` excerpts behind a warning or failure, one item a line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
    /// What to do or run next (warnings and failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    pub fn ok(description: impl Into<String>) -> Check {
        Check { status: CheckStatus::Ok, description: description.into(), detail: Vec::new(), hint: None }
    }

    pub fn warning(description: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            status: CheckStatus::Warning,
            description: description.into(),
            detail: Vec::new(),
            hint: Some(hint.into()),
        }
    }

    pub fn failure(description: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            status: CheckStatus::Failure,
            description: description.into(),
            detail: Vec::new(),
            hint: Some(hint.into()),
        }
    }

    pub fn with_detail(mut self, detail: Vec<String>) -> Check {
        self.detail = detail;
        self
    }
}

/// A named group of checks (`control-plane`, `configuration`, `data-plane`, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub name: String,
    pub checks: Vec<Check>,
}

/// `GET /api/v1/check`, `meshlens check -o json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The control plane's version (absent for `--pre`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The window traffic was judged over, in seconds (absent for `--pre`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<f64>,
    pub sections: Vec<Section>,
}

impl CheckReport {
    /// The worst outcome of every check (`Ok` when there is none).
    pub fn worst(&self) -> CheckStatus {
        self.sections.iter().flat_map(|s| &s.checks).map(|c| c.status).max().unwrap_or(CheckStatus::Ok)
    }
}

/// What changed between two meshes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only in the other mesh.
    Added,
    /// Only in this mesh.
    Removed,
    /// In both, with different values.
    Changed,
}

impl Change {
    /// `+`, `-` or `~`.
    pub fn mark(self) -> &'static str {
        match self {
            Change::Added => "+",
            Change::Removed => "-",
            Change::Changed => "~",
        }
    }
}

/// One difference between two meshes' configurations.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Difference {
    /// `service`, `profile`, `route`, `timeout`, `retry-budget`, `split` or `weight`.
    pub kind: String,
    /// What differs: `svc/NS/NAME`, `sp/NS/NAME`, `route sp/NS/NAME ROUTE`, `ts/NS/NAME`, `ts/NS/NAME BACKEND`.
    pub subject: String,
    pub change: Change,
    /// The value in this mesh (absent when added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub this: Option<String>,
    /// The value in the other mesh (absent when removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
}

/// `meshlens check --compare OTHER -o json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// This mesh: a control plane URL or a directory.
    pub this: String,
    /// The other mesh.
    pub other: String,
    pub differences: Vec<Difference>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_of_every_section() {
        let mut r = CheckReport::default();
        assert_eq!(r.worst(), CheckStatus::Ok);
        r.sections.push(Section { name: "a".into(), checks: vec![Check::ok("x"), Check::warning("y", "z")] });
        assert_eq!(r.worst(), CheckStatus::Warning);
        r.sections.push(Section { name: "b".into(), checks: vec![Check::failure("y", "z")] });
        assert_eq!(r.worst(), CheckStatus::Failure);
        assert_eq!(serde_json::to_string(&CheckStatus::Failure).unwrap(), "\"failure\"");
    }
}

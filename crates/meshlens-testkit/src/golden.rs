//! Golden files: output compared with a file in the repository; `UPDATE_GOLDEN=1` rewrites the file.

use std::path::Path;

/// Asserts that `actual` is the text of the golden file `path`; with `UPDATE_GOLDEN=1` in the
/// environment, writes `actual` there instead (creating the directory). A difference names the file and
/// its first differing line.
pub fn assert_golden(path: impl AsRef<Path>, actual: &str) {
    let path = path.as_ref();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        }
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    if actual != expected {
        let (a, e): (Vec<&str>, Vec<&str>) = (actual.lines().collect(), expected.lines().collect());
        let at = a.iter().zip(&e).position(|(a, e)| a != e).unwrap_or(a.len().min(e.len()));
        panic!(
            "{} differs at line {}:\n  expected: {:?}\n  actual:   {:?}\n(UPDATE_GOLDEN=1 rewrites it)",
            path.display(),
            at + 1,
            e.get(at).copied().unwrap_or("<end of file>"),
            a.get(at).copied().unwrap_or("<end of output>"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_names_the_file_and_the_line() {
        let dir = crate::TempDir::new("golden");
        let path = dir.write("x.golden", "a\nb\nc\n");
        assert_golden(&path, "a\nb\nc\n");
        let err = std::panic::catch_unwind(|| assert_golden(&path, "a\nB\nc\n")).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("x.golden differs at line 2") && msg.contains("\"B\""), "{msg}");
        let err = std::panic::catch_unwind(|| assert_golden(&path, "a\nb\n")).unwrap_err();
        assert!(err.downcast_ref::<String>().unwrap().contains("line 3"));
    }
}

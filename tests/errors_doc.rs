//! docs/errors.md names a test for every bad input: each must exist.

use std::path::Path;

#[test]
fn every_row_of_the_bad_input_table_names_a_test_that_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/errors.md")).unwrap();
    let mut rows = 0;
    let mut named = 0;
    for line in doc
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| bad input"))
    {
        let Some(tests) = line.trim_end_matches('|').rsplit('|').next() else {
            continue;
        };
        rows += 1;
        let mut in_row = 0;
        for reference in tests.split('`').skip(1).step_by(2) {
            let (file, name) = reference
                .split_once("::")
                .unwrap_or_else(|| panic!("not FILE::TEST: {reference:?} in {line}"));
            let source = std::fs::read_to_string(root.join(file))
                .unwrap_or_else(|err| panic!("{file}: {err} (named in {line})"));
            assert!(
                source.contains(&format!("fn {name}(")),
                "{file} has no test {name} (named in {line})"
            );
            in_row += 1;
        }
        assert!(in_row > 0, "a row without a test: {line}");
        named += in_row;
    }
    assert!(rows >= 50, "only {rows} rows");
    assert!(named >= rows);
}

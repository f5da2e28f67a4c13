use meshlens_api::profile::{ResponseClass, ResponseMatch, StatusRange};

use super::{Class, ResponseClassifier, default_class};

fn classes(yaml: &str) -> Vec<ResponseClass> {
    serde_json::from_value(serde_saphyr::from_str::<serde_json::Value>(yaml).unwrap()).unwrap()
}

fn compile(yaml: &str) -> ResponseClassifier {
    ResponseClassifier::compile(&classes(yaml)).unwrap_or_else(|e| panic!("{e}"))
}

fn error(yaml: &str) -> String {
    ResponseClassifier::compile(&classes(yaml)).unwrap_err()
}

use Class::{Failure, Success};

#[test]
fn default_classification() {
    let c = ResponseClassifier::default();
    assert!(c.is_empty());
    assert_eq!(c.classify(200, None), Success);
    assert_eq!(c.classify(404, None), Success);
    assert_eq!(c.classify(499, None), Success);
    assert_eq!(c.classify(500, None), Failure);
    assert_eq!(c.classify(503, None), Failure);
    assert_eq!(c.classify(599, None), Failure);
    // gRPC: a non-zero status fails; a 5xx fails whatever its grpc-status (one rule with the endpoint's).
    assert_eq!(c.classify(200, Some(0)), Success);
    assert_eq!(c.classify(200, Some(14)), Failure);
    assert_eq!(c.classify(200, Some(5)), Failure);
    assert_eq!(c.classify(503, Some(0)), Failure);
    assert_eq!(default_class(502, None), Failure);
}

#[test]
fn first_matching_class_decides() {
    let c = compile(
        r#"
- condition: {status: {min: 500, max: 504}}
  isFailure: false
- condition: {status: {min: 500, max: 599}}
  isFailure: true
- condition: {status: {min: 400, max: 499}}
  isFailure: true
"#,
    );
    assert_eq!(c.len(), 3);
    assert_eq!(c.classify(503, None), Success);
    assert_eq!(c.classify(505, None), Failure);
    assert_eq!(c.classify(404, None), Failure);
    assert_eq!(c.classify(200, None), Success);
}

#[test]
fn unmatched_falls_back_to_default_including_grpc() {
    let c = compile("- {condition: {status: {min: 404, max: 404}}, isFailure: true}");
    assert_eq!(c.classify(404, None), Failure);
    assert_eq!(c.classify(500, None), Failure);
    assert_eq!(c.classify(200, None), Success);
    assert_eq!(c.classify(200, Some(13)), Failure);
    // A matching class wins over the gRPC status.
    assert_eq!(c.classify(404, Some(0)), Failure);
    let ok_500 = compile("- {condition: {status: {min: 500, max: 500}}, isFailure: false}");
    assert_eq!(ok_500.classify(500, Some(13)), Success);
}

#[test]
fn lone_min_or_max_matches_that_code() {
    let c = compile("- {condition: {status: {min: 429}}, isFailure: true}");
    assert_eq!(c.classify(429, None), Failure);
    assert_eq!(c.classify(430, None), Success);
    assert_eq!(c.classify(428, None), Success);
    let c = compile("- {condition: {status: {max: 503}}, isFailure: false}");
    assert_eq!(c.classify(503, None), Success);
    assert_eq!(c.classify(502, None), Failure);
    assert_eq!(c.classify(100, None), Success);
    // 0 is unset, as in Go.
    let c = compile("- {condition: {status: {min: 0, max: 418}}, isFailure: true}");
    assert_eq!(c.classify(418, None), Failure);
    assert_eq!(c.classify(417, None), Success);
}

#[test]
fn is_failure_defaults_to_false() {
    let c = compile("- {condition: {status: {min: 500, max: 599}}}");
    assert_eq!(c.classify(500, None), Success);
}

#[test]
fn all_any_not_and_several_fields() {
    let c = compile(
        r#"
- condition:
    any:
      - status: {min: 429}
      - all:
          - status: {min: 500, max: 599}
          - not: {status: {min: 501}}
  isFailure: true
- condition:
    not: {status: {min: 200, max: 299}}
  isFailure: false
"#,
    );
    assert_eq!(c.classify(429, None), Failure);
    assert_eq!(c.classify(500, None), Failure);
    assert_eq!(c.classify(501, None), Success, "excluded by not, then the catch-all non-2xx class");
    assert_eq!(c.classify(200, None), Success);
    // Several fields in one match: AND.
    let and = compile("- {condition: {status: {min: 500, max: 599}, not: {status: {min: 503}}}, isFailure: true}");
    assert_eq!(and.classify(500, None), Failure);
    assert_eq!(and.classify(503, None), Failure, "not a class match, but the default calls 5xx failure");
    let and_ok = compile("- {condition: {status: {min: 500, max: 599}, not: {status: {min: 503}}}, isFailure: false}");
    assert_eq!(and_ok.classify(500, None), Success);
    assert_eq!(and_ok.classify(503, None), Failure);
}

#[test]
fn validation() {
    assert_eq!(error("- {condition: {status: {min: 99}}}"), "responseClasses[0]: status: min 99 is not in 100..=599");
    assert_eq!(
        error("- {condition: {status: {min: 500}}}\n- {condition: {status: {min: 500, max: 600}}}"),
        "responseClasses[1]: status: max 600 is not in 100..=599"
    );
    assert_eq!(
        error("- {condition: {status: {min: 504, max: 500}}}"),
        "responseClasses[0]: status: max 500 is below min 504"
    );
    assert_eq!(error("- {condition: {status: {}}}"), "responseClasses[0]: status: sets neither min nor max");
    assert_eq!(
        error("- {condition: {}}"),
        "responseClasses[0]: a response match must set one of status, all, any, not"
    );
    assert_eq!(error("- {condition: {all: []}}"), "responseClasses[0]: all is empty");
    assert_eq!(error("- {condition: {any: []}}"), "responseClasses[0]: any is empty");
    assert_eq!(
        error("- {condition: {any: [{status: {min: 500}}, {not: {}}]}}"),
        "responseClasses[0]: any[1]: not: a response match must set one of status, all, any, not"
    );
    // Bounds themselves are accepted.
    compile("- {condition: {status: {min: 100, max: 599}}}");
    let direct = ResponseClassifier::compile(&[ResponseClass {
        condition: ResponseMatch { status: Some(StatusRange { min: Some(500), max: None }), ..Default::default() },
        is_failure: true,
    }])
    .unwrap();
    assert_eq!(direct.classify(500, None), Failure);
}

#[test]
fn class_helpers() {
    assert!(Failure.is_failure());
    assert!(!Success.is_failure());
    assert_eq!(Failure.as_str(), "failure");
    assert_eq!(Success.as_str(), "success");
    assert_eq!(Class::from_failure(true), Failure);
}

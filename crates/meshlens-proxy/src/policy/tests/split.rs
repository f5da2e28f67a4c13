use std::collections::BTreeMap;

use meshlens_api::profile::{Quantity, TrafficSplit};

use super::{WeightedPicker, quantity_weight, split_backends};

fn shares(
    picker: &WeightedPicker<&'static str>,
    n: usize,
    mut pick: impl FnMut() -> &'static str,
) -> BTreeMap<&'static str, f64> {
    let mut counts = BTreeMap::new();
    for (item, _) in picker.iter() {
        counts.insert(*item, 0.0);
    }
    for _ in 0..n {
        *counts.entry(pick()).or_insert(0.0) += 100.0 / n as f64;
    }
    counts
}

#[test]
fn ninety_ten_over_2000_picks_within_3_points() {
    let picker = WeightedPicker::new([("stable", 900), ("canary", 100), ("off", 0)]);
    let mut rng = fastrand::Rng::with_seed(7);
    let s = shares(&picker, 2000, || picker.pick_with(&mut rng).copied().unwrap());
    assert!((s["stable"] - 90.0).abs() <= 3.0, "{s:?}");
    assert!((s["canary"] - 10.0).abs() <= 3.0, "{s:?}");
    assert!(!s.contains_key("off"), "weight 0 picked: {s:?}");
    // And with the thread-local generator (4.5 standard deviations of margin).
    let s = shares(&picker, 2000, || picker.pick().copied().unwrap());
    assert!((s["stable"] - 90.0).abs() <= 3.0, "{s:?}");
    assert!(!s.contains_key("off"), "{s:?}");
}

#[test]
fn zero_weights_are_never_picked() {
    let picker = WeightedPicker::new([("a", 0), ("b", 1), ("c", 0), ("d", 1), ("e", 0)]);
    assert_eq!(picker.len(), 2);
    assert_eq!(picker.total_weight(), 2);
    let mut rng = fastrand::Rng::with_seed(1);
    let mut seen = BTreeMap::new();
    for _ in 0..1000 {
        *seen.entry(*picker.pick_with(&mut rng).unwrap()).or_insert(0) += 1;
    }
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), ["b", "d"]);
}

#[test]
fn empty_and_all_zero_pick_nothing() {
    let none: WeightedPicker<u8> = WeightedPicker::new([]);
    assert!(none.is_empty());
    assert_eq!(none.pick(), None);
    let zeros = WeightedPicker::new([(1u8, 0), (2, 0)]);
    assert!(zeros.is_empty());
    assert_eq!(zeros.pick(), None);
    assert_eq!(zeros.pick_with(&mut fastrand::Rng::with_seed(0)), None);
}

#[test]
fn boundaries_of_the_cumulative_ranges() {
    let picker = WeightedPicker::new([('a', 1), ('b', 0), ('c', 2), ('d', 1)]);
    let picked: Vec<char> = (0..5).map(|x| picker.pick_at(x).copied().unwrap_or('-')).collect();
    assert_eq!(picked, ['a', 'c', 'c', 'd', '-']);
    assert_eq!(picker.iter().map(|(c, w)| (*c, w)).collect::<Vec<_>>(), [('a', 1), ('c', 2), ('d', 1)]);
}

#[test]
fn huge_weights_do_not_overflow() {
    let picker = WeightedPicker::new([("a", u32::MAX), ("b", u32::MAX), ("c", 1)]);
    assert_eq!(picker.total_weight(), 2 * u64::from(u32::MAX) + 1);
    let mut rng = fastrand::Rng::with_seed(3);
    let a = (0..1000).filter(|_| *picker.pick_with(&mut rng).unwrap() == "a").count();
    assert!((400..=600).contains(&a), "{a}");
}

#[test]
fn single_backend_always_wins() {
    let picker = WeightedPicker::new([("only", 5)]);
    assert!((0..100).all(|_| picker.pick() == Some(&"only")));
}

fn split(yaml: &str) -> TrafficSplit {
    serde_json::from_value(serde_saphyr::from_str::<serde_json::Value>(yaml).unwrap()).unwrap()
}

#[test]
fn split_backends_reads_quantities_as_relative_weights() {
    let ts = split(
        r#"
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: web-split, namespace: prod}
spec:
  service: web
  backends:
    - {service: web-v1, weight: 900m}
    - {service: web-v2, weight: 100m}
    - {service: web-v3, weight: 0}
    - {service: web-v4, weight: 1}
"#,
    );
    assert_eq!(
        split_backends(&ts).unwrap(),
        [
            ("web-v1".to_string(), 900),
            ("web-v2".to_string(), 100),
            ("web-v3".to_string(), 0),
            ("web-v4".to_string(), 1000)
        ]
    );
    let picker = WeightedPicker::new(split_backends(&ts).unwrap());
    assert_eq!(picker.len(), 3);
    assert_eq!(picker.total_weight(), 2000);
}

#[test]
fn split_backends_errors() {
    let base =
        "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {name: s}\nspec:\n  service: web\n";
    let e = split_backends(&split(&format!("{base}  backends: []"))).unwrap_err();
    assert_eq!(e, "a traffic split needs at least one backend");
    let e =
        split_backends(&split(&format!("{base}  backends: [{{service: a, weight: 1}}, {{service: b, weight: lots}}]")))
            .unwrap_err();
    assert_eq!(e, "backends[1] (b): weight 'lots' is not a quantity");
    let e = split_backends(&split(&format!("{base}  backends: [{{service: a, weight: -5}}]"))).unwrap_err();
    assert_eq!(e, "backends[0] (a): weight '-5' is negative");
    let e = split_backends(&split(&format!("{base}  backends: [{{service: '', weight: 5}}]"))).unwrap_err();
    assert_eq!(e, "backends[0]: service is empty");
}

#[test]
fn quantity_weights() {
    assert_eq!(quantity_weight(&Quantity::Int(500)), Ok(500_000));
    assert_eq!(quantity_weight(&Quantity::Str("500m".into())), Ok(500));
    assert_eq!(quantity_weight(&Quantity::Str("0.5".into())), Ok(500));
    assert_eq!(quantity_weight(&Quantity::Int(0)), Ok(0));
    assert_eq!(quantity_weight(&Quantity::Int(4_294_967)), Ok(4_294_967_000));
    assert_eq!(quantity_weight(&Quantity::Int(4_294_968)), Err("weight '4294968' is too large".to_string()));
}

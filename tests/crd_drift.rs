//! The committed CRD is exactly what the Rust types generate.

use branchpipeline::crd::{all_crds_yaml, crd_files, crd_yaml};

#[test]
fn committed_crds_match_generated() {
    for (file, generated) in crd_files() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let committed = std::fs::read_to_string(&path).expect("CRD file exists");
        pretty_assertions::assert_eq!(
            committed,
            generated,
            "{file} is stale: run `cargo run -- crd --write`"
        );
    }
}

#[test]
fn generated_crd_has_no_null_enum_values() {
    // API servers up to 1.20 reject the CRD whole when an enum lists null.
    fn walk(v: &serde_yaml::Value) {
        if let Some(map) = v.as_mapping() {
            if let Some(values) = map.get("enum").and_then(|e| e.as_sequence()) {
                assert!(
                    values.iter().all(|x| !x.is_null()),
                    "enum with null: {values:?}"
                );
            }
            map.values().for_each(walk);
        } else if let Some(items) = v.as_sequence() {
            items.iter().for_each(walk);
        }
    }
    for (_, yaml) in crd_files() {
        let value: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        walk(&value);
    }
}

#[test]
fn generated_crd_has_no_empty_string_defaults() {
    // kube-apiserver 1.20 turns `default: ""` into null and rejects the CRD.
    let yaml = all_crds_yaml();
    assert!(
        !yaml.contains("default: ''") && !yaml.contains("default: \"\""),
        "{yaml}"
    );
}

#[test]
fn crd_names_and_subresources() {
    let crd: serde_json::Value = serde_yaml::from_str(&crd_yaml()).unwrap();
    assert_eq!(
        crd["metadata"]["name"],
        "branchpipelines.branchpipeline.dev"
    );
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "bpl");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<_> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Ready", "Reason", "Pipelines", "Last Run", "Branch", "Age"]
    );
    // Keyed by type, so the reconcile and the execution tracker each own their conditions.
    let conditions =
        &version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"][0], "type");
    let compute = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["stages"]
        ["items"]["properties"]["computeType"];
    assert_eq!(compute["nullable"], true);
    assert!(
        compute["enum"]
            .as_array()
            .unwrap()
            .contains(&"BUILD_GENERAL1_SMALL".into())
    );
}

#[test]
fn run_crd_names_and_columns() {
    let (_, yaml) = &crd_files()[1];
    let crd: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    assert_eq!(
        crd["metadata"]["name"],
        "branchpipelineruns.branchpipeline.dev"
    );
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "bplrun");
    let version = &crd["spec"]["versions"][0];
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<_> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["BranchPipeline", "Environment", "Branch", "Phase", "Age"]
    );
    // No CEL: kube-apiserver before 1.25 refuses the field under server-side apply.
    assert!(!yaml.contains("x-kubernetes-validations"));
}

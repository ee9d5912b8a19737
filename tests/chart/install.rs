//! Install, upgrade and uninstall on a private bed, where Helm owns the CRD: what an
//! install creates, that CRD changes reach the cluster on upgrade, that the CRD survives
//! uninstall, and that an existing CRD is adopted only when asked.

use anyhow::{Context, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use serde_json::{Value, json};

use crate::helm::{Kubeconfig, Release, chart_copy, helm_ok, without_crd};
use crate::manifests::{contained, crd_file, crd_names, find, kinds, manifest_docs, same};
use crate::support::TestBed;
use crate::support::wait;
use crate::{CRD_NAME, DELETE_TIMEOUT, TestResult, chart_dir};

/// A full install on a private bed, where Helm owns the CRD: the objects exist with what
/// only this test checks (security contexts, probes, resources, the ServiceAccount's
/// annotation, the role bindings, the CRD as stored and owned), and `helm uninstall`
/// removes the controller but keeps the CRD. What the chart renders by default (replicas,
/// args, env, ports, RBAC rules, the Service, one role of each kind) is
/// render::chart_renders_defaults's to check, and aws.region's
/// render::chart_renders_values_into_args_and_env's.
#[tokio::test]
async fn helm_install_creates_the_controller_and_keeps_the_crd_on_uninstall() -> TestResult {
    let bed = TestBed::start().await?;
    let kubeconfig = Kubeconfig::new(&bed)?;
    let client = bed.client();
    let namespace = bed.unique_namespace("bpl-system").await?;
    let release = Release::new(&kubeconfig, &chart_dir(), "bpl", &namespace);
    let fullname = release.fullname();
    let role_arn = "arn:aws:iam::123456789012:role/branchpipeline-controller";
    let result = release
        .install_ok(&json!({
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": role_arn}},
        }))
        .await?;
    assert_eq!(result["info"]["status"], "deployed", "{result}");
    assert_eq!(result["version"], 1);

    // Deployment
    let deployment = Api::<Deployment>::namespaced(client.clone(), &namespace)
        .get(&fullname)
        .await?;
    let d = serde_json::to_value(&deployment)?;
    let pod = d.pointer("/spec/template/spec").context("pod spec")?;
    let container = &pod["containers"][0];
    assert_eq!(pod["serviceAccountName"], fullname.as_str());
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"],
        json!({"type": "RuntimeDefault"})
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"],
        json!({"drop": ["ALL"]})
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "metrics");
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());

    // ServiceAccount
    let account = Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
        .get(&fullname)
        .await?;
    assert_eq!(
        account
            .metadata
            .annotations
            .unwrap_or_default()
            .get("eks.amazonaws.com/role-arn")
            .map(String::as_str),
        Some(role_arn)
    );

    // RBAC: the ClusterRole exists (so that its removal on uninstall means something; its
    // rules are render::chart_renders_defaults's), and the roles are bound to the
    // ServiceAccount.
    Api::<ClusterRole>::all(client.clone())
        .get(&fullname)
        .await?;
    let cluster_binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get(&fullname)
        .await?;
    assert_eq!(cluster_binding.role_ref.kind, "ClusterRole");
    assert_eq!(cluster_binding.role_ref.name, fullname);
    let subjects = serde_json::to_value(cluster_binding.subjects.unwrap_or_default())?;
    assert_eq!(
        subjects,
        json!([{"kind": "ServiceAccount", "name": fullname, "namespace": namespace}])
    );
    let lease_binding = Api::<RoleBinding>::namespaced(client.clone(), &namespace)
        .get(&format!("{fullname}-leader-election"))
        .await?;
    assert_eq!(
        lease_binding.role_ref.name,
        format!("{fullname}-leader-election")
    );
    assert_eq!(
        serde_json::to_value(lease_binding.subjects.unwrap_or_default())?,
        json!([{"kind": "ServiceAccount", "name": fullname, "namespace": namespace}])
    );

    // The CRD: the generated one, owned by this release, kept on uninstall (its keep
    // annotation is checked on the rendered CRD below).
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let crd = crds.get(CRD_NAME).await?;
    let annotations = crd.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("meta.helm.sh/release-name"),
        Some(&release.name)
    );
    let expected = crd_file("branchpipeline.dev_branchpipelines.yaml")?;
    contained(&expected["spec"], &serde_json::to_value(&crd.spec)?, "spec")?;

    // Every rendered CRD is the generated one plus metadata: nothing else changed.
    let docs = manifest_docs(&result)?;
    for (file, name) in crd_names() {
        let expected = crd_file(&file)?;
        let mut rendered = find(&docs, "CustomResourceDefinition", &name)?.clone();
        assert_eq!(
            rendered["metadata"]["annotations"],
            json!({"helm.sh/resource-policy": "keep"})
        );
        let metadata = rendered["metadata"].as_object_mut().context("metadata")?;
        metadata.remove("annotations");
        metadata.remove("labels");
        same(&expected, &rendered)
            .with_context(|| format!("rendered CRD {name} differs from files/crds/{file}"))?;
        assert!(crds.get_opt(&name).await?.is_some(), "{name} installed");
    }

    // Uninstall: the controller goes, the CRD stays.
    release.uninstall_ok().await?;
    wait::until_gone(
        &Api::<Deployment>::namespaced(client.clone(), &namespace),
        &fullname,
        DELETE_TIMEOUT,
    )
    .await?;
    wait::until_gone(
        &Api::<ClusterRole>::all(client.clone()),
        &fullname,
        DELETE_TIMEOUT,
    )
    .await?;
    let crd = crds.get_opt(CRD_NAME).await?;
    assert!(
        crd.is_some_and(|c| c.metadata.deletion_timestamp.is_none()),
        "helm uninstall must keep the CRD"
    );
    Ok(())
}

/// `helm upgrade` applies CRD changes (the CRD is a template, not in crds/), and an
/// upgrade that stops installing it leaves it in place.
#[tokio::test]
async fn helm_upgrade_applies_crd_changes() -> TestResult {
    let bed = TestBed::start().await?;
    let kubeconfig = Kubeconfig::new(&bed)?;
    let client = bed.client();
    let namespace = bed.unique_namespace("bpl-system").await?;
    let (_dir, chart) = chart_copy()?;
    let release = Release::new(&kubeconfig, &chart, "bpl-upgrade", &namespace);
    release.install_ok(&json!({})).await?;

    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let spec_properties = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties";
    let before = serde_json::to_value(crds.get(CRD_NAME).await?)?;
    let properties = before.pointer(spec_properties).context("spec properties")?;
    ensure!(properties.get("chartUpgradeProbe").is_none());
    let property_count = properties.as_object().map(|p| p.len()).unwrap_or_default();

    // The next controller version adds an optional field.
    let crd_path = chart.join("files/crds/branchpipeline.dev_branchpipelines.yaml");
    let mut crd: Value = serde_yaml::from_str(&std::fs::read_to_string(&crd_path)?)?;
    let added = json!({"type": "string", "description": "Added by tests/chart/install.rs."});
    crd.pointer_mut(spec_properties)
        .and_then(Value::as_object_mut)
        .context("spec properties in files/crds/branchpipeline.dev_branchpipelines.yaml")?
        .insert("chartUpgradeProbe".into(), added.clone());
    std::fs::write(&crd_path, serde_yaml::to_string(&crd)?)?;

    let result = release.upgrade_ok(&json!({})).await?;
    assert_eq!(result["version"], 2, "{result}");
    assert_eq!(result["info"]["status"], "deployed");

    let after = serde_json::to_value(crds.get(CRD_NAME).await?)?;
    let properties = after.pointer(spec_properties).context("spec properties")?;
    assert_eq!(properties.get("chartUpgradeProbe"), Some(&added));
    assert_eq!(
        properties.as_object().map(|p| p.len()).unwrap_or_default(),
        property_count + 1
    );
    // The apiserver serves the new field: a BranchPipeline may now set it (as far as
    // the schema goes; the bed runs no controller to act on it).
    let served = after
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    assert!(served, "CRD not Established after the upgrade: {after}");

    // Handing the CRD over (crds.install=false) drops it from the release, not from the
    // cluster: helm.sh/resource-policy keep covers upgrades too.
    let result = release
        .upgrade_ok(&json!({"crds": {"install": false}}))
        .await?;
    assert_eq!(result["version"], 3, "{result}");
    let docs = manifest_docs(&result)?;
    assert!(!kinds(&docs).contains("CustomResourceDefinition"));
    let kept = crds.get_opt(CRD_NAME).await?;
    assert!(
        kept.is_some_and(|c| c.metadata.deletion_timestamp.is_none()),
        "an upgrade with crds.install=false must keep the CRD"
    );
    Ok(())
}

/// A CRD applied without Helm (kubectl, or here the test bed's server-side apply) is not
/// silently taken over: the install fails until the user opts in, e.g. with Helm's
/// --take-ownership, as the chart README says.
#[tokio::test]
async fn helm_install_adopts_an_existing_crd_only_when_asked() -> TestResult {
    let bed = TestBed::start().await?;
    bed.install_crds().await?;
    let kubeconfig = Kubeconfig::new(&bed)?;
    let client = bed.client();
    let namespace = bed.unique_namespace("bpl-system").await?;
    let release = Release::new(&kubeconfig, &chart_dir(), "bpl-adopt", &namespace);

    let refused = release.install(&json!({})).await?;
    let error = refused
        .err()
        .context("installed over a CRD it does not own")?;
    assert!(error.contains("cannot be imported"), "{error}");
    // Helm names the first CRD it found unowned; each of them would stop the install.
    assert!(
        crd_names().iter().any(|(_, name)| error.contains(name)),
        "{error}"
    );

    // The same CRD left alone: crds.install=false installs the controller only.
    release.install_ok(&without_crd(json!({}))).await?;
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get(CRD_NAME)
        .await?;
    let annotations = crd.metadata.annotations.unwrap_or_default();
    assert!(!annotations.contains_key("meta.helm.sh/release-name"));

    // Opting in: the next upgrade owns it, keep annotation included.
    let mut request = release.request(&json!({"crds": {"install": true}}));
    request["options"] = json!({"take_ownership": true});
    helm_ok("upgrade", &request).await?;
    let crd = Api::<CustomResourceDefinition>::all(client)
        .get(CRD_NAME)
        .await?;
    let annotations = crd.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("meta.helm.sh/release-name"),
        Some(&release.name)
    );
    assert_eq!(
        annotations
            .get("helm.sh/resource-policy")
            .map(String::as_str),
        Some("keep")
    );
    Ok(())
}

//! What the chart renders: `helm lint`, the values schema, the default manifests, values
//! turned into args and env, watch-namespace mode, and the optional PodDisruptionBudget and
//! ServiceMonitor. Releases go to the shared bed without the CRD.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

use crate::helm::{Kubeconfig, chart_copy, helm_ok, shared_release, without_crd};
use crate::manifests::{
    class_grants, controller_grants, deployment_args, deployment_env, find, grants, kinds,
    lease_grants, manifest_docs, only, rules_of,
};
use crate::support::TestBed;
use crate::support::wait::{self, Check};
use crate::{CHART_NAME, TestResult, chart_dir};

// ---------------------------------------------------------------------- lint

#[tokio::test]
async fn helm_lint_passes() -> TestResult {
    let result = helm_ok("lint", &json!({"chart": chart_dir()})).await?;
    assert_eq!(result["charts"], 1, "{result}");
    assert_eq!(result["errors"], 0, "helm lint found errors: {result}");
    let problems: Vec<&Value> = result["messages"]
        .as_array()
        .context("messages")?
        .iter()
        .filter(|m| m["severity"] != "INFO")
        .collect();
    assert!(problems.is_empty(), "helm lint warnings: {problems:?}");
    Ok(())
}

/// Lint validates values.yaml against values.schema.json, so bad defaults fail it.
#[tokio::test]
async fn helm_lint_rejects_bad_defaults() -> TestResult {
    let (_dir, chart) = chart_copy()?;
    let values = chart.join("values.yaml");
    let text = std::fs::read_to_string(&values)?;
    ensure!(text.contains("\nreplicaCount: 2\n"), "values.yaml changed");
    std::fs::write(
        &values,
        text.replace("\nreplicaCount: 2\n", "\nreplicaCount: \"two\"\n"),
    )?;
    let result = helm_ok("lint", &json!({"chart": chart})).await?;
    assert_ne!(result["errors"], 0, "{result}");
    assert!(
        result["messages"]
            .as_array()
            .context("messages")?
            .iter()
            .any(|m| m["severity"] == "ERROR" && m["path"] == "values.yaml"),
        "{result}"
    );
    Ok(())
}

// -------------------------------------------------------------------- values

#[tokio::test]
async fn values_schema_rejects_bad_values() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let release = shared_release(bed, &kubeconfig, "chart-schema").await?;
    let cases = [
        (json!({"replicaCount": "two"}), "/replicaCount"),
        (json!({"replicaCount": 0}), "/replicaCount"),
        (json!({"replicaCount": 1.5}), "/replicaCount"),
        (json!({"resyncInterval": "10 minutes"}), "/resyncInterval"),
        (json!({"resyncInterval": "600"}), "/resyncInterval"),
        (json!({"watchNamespaces": ["Team_A"]}), "/watchNamespaces/0"),
        (json!({"watchNamespaces": "team-a"}), "/watchNamespaces"),
        (
            json!({"watchNamespaces": ["team-a", "team-a"]}),
            "/watchNamespaces",
        ),
        (
            json!({"image": {"pullPolicy": "Sometimes"}}),
            "/image/pullPolicy",
        ),
        (json!({"deletionPolicy": "Keep"}), "/deletionPolicy"),
        (json!({"logFormat": "xml"}), "/logFormat"),
        (json!({"metrics": {"port": 70000}}), "/metrics/port"),
        (json!({"aws": {"region": "Europe"}}), "/aws/region"),
        (
            json!({"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": 5}}}),
            "/serviceAccount/annotations",
        ),
        (json!({"crds": {"install": "yes"}}), "/crds/install"),
        // A typo is an error, not a silently ignored key.
        (json!({"replicas": 3}), "'replicas' not allowed"),
        (
            json!({"leaderElection": {"enable": true}}),
            "'enable' not allowed",
        ),
        (
            json!({"github": {"apiUrl": "api.github.com"}}),
            "/github/apiUrl",
        ),
        (
            json!({"executions": {"pollInterval": "1 minute"}}),
            "/executions/pollInterval",
        ),
        // Template-level checks.
        (
            json!({"leaderElection": {"enabled": false}}),
            "needs leaderElection.enabled",
        ),
        (
            json!({"github": {"app": {"id": 7, "privateKeySecret": {"name": "app"}}, "tokenSecret": {"name": "t"}}}),
            "not both",
        ),
        (
            json!({"github": {"app": {"id": 7}}}),
            "needs github.app.privateKeySecret.name",
        ),
        (
            json!({"github": {"app": {"privateKeySecret": {"name": "app", "idKey": "app id"}}}}),
            "/github/app/privateKeySecret/idKey",
        ),
    ];
    let requests: Vec<Value> = cases
        .iter()
        .map(|(values, _)| without_crd(values.clone()))
        .collect();
    let outcomes =
        futures::future::join_all(requests.iter().map(|values| release.install(values))).await;
    let mut failures = Vec::new();
    for ((values, expected), outcome) in cases.iter().zip(outcomes) {
        match outcome? {
            Ok(_) => failures.push(format!("{values}: installed")),
            Err(e) if !e.contains(expected) => {
                failures.push(format!("{values}: error lacks {expected:?}: {e}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing was recorded for a refused install.
    assert!(release.status().await?.is_err());
    // ... and the same release with good values goes in.
    release
        .install_ok(&without_crd(
            json!({"replicaCount": 1, "resyncInterval": "1h30m"}),
        ))
        .await?;
    Ok(())
}

#[tokio::test]
async fn chart_renders_defaults() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let release = shared_release(bed, &kubeconfig, "chart-defaults").await?;
    let result = release.install_ok(&without_crd(json!({}))).await?;
    let docs = manifest_docs(&result)?;
    let fullname = release.fullname();

    let expected_kinds: BTreeSet<String> = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(kinds(&docs), expected_kinds);
    assert_eq!(docs.len(), 9, "{:?}", kinds(&docs));
    for doc in &docs {
        let labels = &doc["metadata"]["labels"];
        assert_eq!(
            labels["app.kubernetes.io/instance"],
            release.name.as_str(),
            "{doc}"
        );
        assert_eq!(labels["app.kubernetes.io/name"], CHART_NAME, "{doc}");
        assert_eq!(
            labels["app.kubernetes.io/version"],
            env!("CARGO_PKG_VERSION")
        );
        if doc["kind"] != "ClusterRole" && doc["kind"] != "ClusterRoleBinding" {
            assert_eq!(
                doc["metadata"]["namespace"],
                release.namespace.as_str(),
                "{doc}"
            );
        }
    }

    assert_eq!(
        deployment_args(&docs)?,
        [
            "run",
            "--resync-interval=10m",
            "--leader-election",
            "--max-concurrent-reconciles=16",
            "--aws-max-tps=10",
            "--pipeline-quota=1000",
            "--project-quota=5000",
            "--execution-poll-interval=60s",
            "--execution-active-poll-interval=10s",
            "--metrics-addr=0.0.0.0:8080",
            "--log-format=json",
        ]
    );
    let deployment = find(&docs, "Deployment", &fullname)?;
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment.pointer("/spec/template/spec/containers/0/image"),
        Some(&json!(format!(
            "ghcr.io/branchpipeline/branchpipeline-controller:{}",
            env!("CARGO_PKG_VERSION")
        )))
    );
    let env = deployment_env(&docs)?;
    assert_eq!(
        env,
        [
            json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
            json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        ],
        "no AWS_REGION unless aws.region is set"
    );

    let cluster_role = find(&docs, "ClusterRole", &fullname)?;
    assert_eq!(grants(&rules_of(cluster_role)?)?, controller_grants());
    let classes = find(&docs, "ClusterRole", &format!("{fullname}-classes"))?;
    assert_eq!(grants(&rules_of(classes)?)?, class_grants());
    let leases = find(&docs, "Role", &format!("{fullname}-leader-election"))?;
    assert_eq!(grants(&rules_of(leases)?)?, lease_grants());

    let service = find(&docs, "Service", &format!("{fullname}-metrics"))?;
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}])
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment
            .pointer("/spec/selector/matchLabels")
            .cloned()
            .unwrap_or_default()
    );
    Ok(())
}

#[tokio::test]
async fn chart_renders_values_into_args_and_env() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let cases = [
        (
            json!({
                "resyncInterval": "5m30s",
                "deletionPolicy": "Retain",
                "logFormat": "text",
                "leaderElection": {"leaseName": "bpl-team-a"},
                "metrics": {"port": 9090},
                "aws": {"region": "eu-west-1"},
                "image": {"tag": "0.2.0-rc.1"},
            }),
            vec![
                "run",
                "--resync-interval=5m30s",
                "--deletion-policy=Retain",
                "--leader-election",
                "--lease-name=bpl-team-a",
                "--max-concurrent-reconciles=16",
                "--aws-max-tps=10",
                "--pipeline-quota=1000",
                "--project-quota=5000",
                "--execution-poll-interval=60s",
                "--execution-active-poll-interval=10s",
                "--metrics-addr=0.0.0.0:9090",
                "--log-format=text",
            ],
        ),
        (
            json!({"replicaCount": 1, "leaderElection": {"enabled": false}, "deletionPolicy": "Delete", "requireClass": true}),
            vec![
                "run",
                "--resync-interval=10m",
                "--deletion-policy=Delete",
                "--max-concurrent-reconciles=16",
                "--require-class",
                "--aws-max-tps=10",
                "--pipeline-quota=1000",
                "--project-quota=5000",
                "--execution-poll-interval=60s",
                "--execution-active-poll-interval=10s",
                "--metrics-addr=0.0.0.0:8080",
                "--log-format=json",
            ],
        ),
    ];
    for (i, (values, args)) in cases.iter().enumerate() {
        let release = shared_release(bed, &kubeconfig, &format!("chart-values-{i}")).await?;
        let docs = manifest_docs(&release.install_ok(&without_crd(values.clone())).await?)?;
        assert_eq!(&deployment_args(&docs)?, args, "{values}");
        let deployment = only(&docs, "Deployment")?;
        let port = values
            .pointer("/metrics/port")
            .cloned()
            .unwrap_or(json!(8080));
        assert_eq!(
            deployment.pointer("/spec/template/spec/containers/0/ports"),
            Some(&json!([{"name": "metrics", "containerPort": port, "protocol": "TCP"}]))
        );
        // Without aws.region there is no AWS_REGION: chart_renders_defaults checks the env.
        if let Some(r) = values.pointer("/aws/region") {
            let env = deployment_env(&docs)?;
            let region = env.iter().find(|e| e["name"] == "AWS_REGION");
            assert_eq!(region, Some(&json!({"name": "AWS_REGION", "value": r})));
        }
        if let Some(tag) = values.pointer("/image/tag").and_then(Value::as_str) {
            let image = deployment.pointer("/spec/template/spec/containers/0/image");
            assert!(
                image
                    .and_then(Value::as_str)
                    .is_some_and(|i| i.ends_with(&format!(":{tag}")))
            );
        }
        // Without leader election there is no Lease to grant (with it, the Lease Role is
        // chart_renders_defaults's).
        if values.pointer("/leaderElection/enabled") == Some(&json!(false)) {
            let lease_role = docs
                .iter()
                .any(|d| d["kind"] == "Role" && d.to_string().contains("coordination.k8s.io"));
            assert!(
                !lease_role,
                "{values}: a Lease Role without leader election"
            );
        }
    }
    Ok(())
}

/// GitHub credentials come from Secrets mounted read-only and passed as files: never as
/// arguments or environment variables, and with no RBAC on Secrets.
#[tokio::test]
async fn github_credentials_are_mounted_secrets() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let cases = [
        (
            json!({"github": {"apiUrl": "https://ghe.example.com/api/v3", "app": {"id": 123456, "privateKeySecret": {"name": "github-app"}}}}),
            vec![
                "--github-app-id=123456",
                "--github-app-key-file=/var/run/secrets/github/app/private-key.pem",
                "--github-api-url=https://ghe.example.com/api/v3",
            ],
            (
                "github-app",
                "/var/run/secrets/github/app",
                "private-key.pem",
            ),
        ),
        (
            json!({"github": {"tokenSecret": {"name": "github-token", "key": "pat"}}}),
            vec![
                "--github-token-file=/var/run/secrets/github/token/pat",
                "--github-api-url=https://api.github.com",
            ],
            ("github-token", "/var/run/secrets/github/token", "pat"),
        ),
    ];
    for (i, (values, want, (secret, path, key))) in cases.iter().enumerate() {
        let release = shared_release(bed, &kubeconfig, &format!("chart-github-{i}")).await?;
        let docs = manifest_docs(&release.install_ok(&without_crd(values.clone())).await?)?;
        let args = deployment_args(&docs)?;
        let github: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .filter(|a| a.starts_with("--github"))
            .collect();
        assert_eq!(&github, want, "{values}");
        let deployment = only(&docs, "Deployment")?;
        let spec = &deployment["spec"]["template"]["spec"];
        let volume = spec["volumes"]
            .as_array()
            .context("volumes")?
            .iter()
            .find(|v| v["secret"]["secretName"] == *secret)
            .with_context(|| format!("no volume for {secret}: {spec}"))?;
        assert_eq!(
            volume["secret"]["items"],
            json!([{"key": key, "path": key}])
        );
        let mount = spec["containers"][0]["volumeMounts"]
            .as_array()
            .context("mounts")?
            .iter()
            .find(|m| m["name"] == volume["name"])
            .context("mount")?;
        assert_eq!(
            (mount["mountPath"].as_str(), mount["readOnly"].as_bool()),
            (Some(*path), Some(true))
        );
        assert!(
            deployment_env(&docs)?
                .iter()
                .all(|e| !e.to_string().contains(secret))
        );
        let cluster_role = find(&docs, "ClusterRole", &release.fullname())?;
        assert_eq!(
            grants(&rules_of(cluster_role)?)?,
            controller_grants(),
            "no Secrets access"
        );
    }
    Ok(())
}

/// Without `github.app.id`, the App's id comes from the Secret holding its key; only the id
/// is an environment variable, never the key.
#[tokio::test]
async fn the_github_app_id_can_come_from_its_secret() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let release = shared_release(bed, &kubeconfig, "chart-github-id").await?;
    let values =
        json!({"github": {"app": {"privateKeySecret": {"name": "github-app", "idKey": "id"}}}});
    let docs = manifest_docs(&release.install_ok(&without_crd(values)).await?)?;
    let github: Vec<String> = deployment_args(&docs)?
        .into_iter()
        .filter(|a| a.starts_with("--github"))
        .collect();
    assert_eq!(
        github,
        [
            "--github-app-key-file=/var/run/secrets/github/app/private-key.pem",
            "--github-api-url=https://api.github.com",
        ]
    );
    let from_secret: Vec<Value> = deployment_env(&docs)?
        .into_iter()
        .filter(|e| e.to_string().contains("github-app"))
        .collect();
    assert_eq!(
        from_secret,
        [
            json!({"name": "GITHUB_APP_ID", "valueFrom": {"secretKeyRef": {"name": "github-app", "key": "id"}}})
        ]
    );
    Ok(())
}

#[tokio::test]
async fn watch_namespace_mode_uses_a_role_instead_of_a_cluster_role() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let client = bed.client();
    let release = shared_release(bed, &kubeconfig, "chart-watch").await?;
    let watched = bed.unique_namespace("chart-watched").await?;
    let also_watched = bed.unique_namespace("chart-watched").await?;
    let result = release
        .install_ok(&without_crd(
            json!({"watchNamespaces": [watched, also_watched]}),
        ))
        .await?;
    let docs = manifest_docs(&result)?;
    let fullname = release.fullname();

    // The one cluster-wide grant: reading classes (cluster-scoped) and namespace labels.
    let cluster_roles: Vec<&serde_json::Value> =
        docs.iter().filter(|d| d["kind"] == "ClusterRole").collect();
    assert_eq!(cluster_roles.len(), 1, "{:?}", kinds(&docs));
    assert_eq!(
        cluster_roles[0]["metadata"]["name"],
        format!("{fullname}-classes").as_str()
    );
    assert_eq!(grants(&rules_of(cluster_roles[0])?)?, class_grants());
    let bindings = docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding")
        .count();
    assert_eq!(bindings, 1);
    assert_eq!(
        deployment_args(&docs)?,
        [
            "run",
            "--resync-interval=10m",
            format!("--namespace={watched}").as_str(),
            format!("--namespace={also_watched}").as_str(),
            "--leader-election",
            "--max-concurrent-reconciles=16",
            "--aws-max-tps=10",
            "--pipeline-quota=1000",
            "--project-quota=5000",
            "--execution-poll-interval=60s",
            "--execution-active-poll-interval=10s",
            "--metrics-addr=0.0.0.0:8080",
            "--log-format=json",
        ]
    );

    // On the apiserver: the controller's rules in each watched namespace, and the Lease rules
    // in the release namespace. (The only cluster-wide grant is the class ClusterRole above.)
    for ns in [&watched, &also_watched] {
        let role = Api::<Role>::namespaced(client.clone(), ns)
            .get(&fullname)
            .await?;
        assert_eq!(
            grants(role.rules.as_deref().unwrap_or_default())?,
            controller_grants()
        );
    }
    let binding = Api::<RoleBinding>::namespaced(client.clone(), &watched)
        .get(&fullname)
        .await?;
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.role_ref.name, fullname);
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(subjects[0].name, fullname);
    assert_eq!(
        subjects[0].namespace.as_deref(),
        Some(release.namespace.as_str())
    );

    let lease_role = Api::<Role>::namespaced(client.clone(), &release.namespace)
        .get(&format!("{fullname}-leader-election"))
        .await?;
    assert_eq!(
        grants(lease_role.rules.as_deref().unwrap_or_default())?,
        lease_grants()
    );
    assert!(
        Api::<Role>::namespaced(client.clone(), &release.namespace)
            .get_opt(&fullname)
            .await?
            .is_none(),
        "the controller's rules belong in the watched namespace only"
    );
    Ok(())
}

#[tokio::test]
async fn optional_pdb_and_service_monitor() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let client = bed.client();
    // prometheus-operator's CRD, reduced to what lets a ServiceMonitor be stored.
    let service_monitor_crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {"kind": "ServiceMonitor", "listKind": "ServiceMonitorList", "plural": "servicemonitors", "singular": "servicemonitor"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            }],
        },
    });
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    crds.patch(
        "servicemonitors.monitoring.coreos.com",
        &PatchParams::apply("chart-test").force(),
        &Patch::Apply(&service_monitor_crd),
    )
    .await?;
    let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor");
    // Established, and served: the apiserver takes a moment to route the new resource.
    let monitors_resource = ApiResource::from_gvk(&gvk);
    let monitors =
        Api::<DynamicObject>::namespaced_with(client.clone(), "default", &monitors_resource);
    wait::until(
        "the ServiceMonitor CRD to be served",
        Duration::from_secs(30),
        || async {
            Ok(match monitors.list(&ListParams::default()).await {
                Ok(_) => Check::Done(()),
                Err(e) => Check::NotYet(format!("{e:?}")),
            })
        },
    )
    .await?;

    let release = shared_release(bed, &kubeconfig, "chart-optional").await?;
    let result = release
        .install_ok(&without_crd(json!({
            "podDisruptionBudget": {"enabled": true},
            "metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "prometheus"}}},
        })))
        .await?;
    let docs = manifest_docs(&result)?;
    let fullname = release.fullname();

    // policy/v1 PodDisruptionBudget from Kubernetes 1.21; the bed's 1.20 gets v1beta1.
    let pdb = find(&docs, "PodDisruptionBudget", &fullname)?;
    let pdb_version = pdb["apiVersion"].as_str().context("apiVersion")?;
    assert!(
        ["policy/v1", "policy/v1beta1"].contains(&pdb_version),
        "{pdb_version}"
    );
    let (group, version) = pdb_version.split_once('/').context("group/version")?;
    let pdb_resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        group,
        version,
        "PodDisruptionBudget",
    ));
    let stored =
        Api::<DynamicObject>::namespaced_with(client.clone(), &release.namespace, &pdb_resource)
            .get(&fullname)
            .await?;
    assert_eq!(stored.data["spec"]["minAvailable"], 1);
    let deployment = Api::<Deployment>::namespaced(client.clone(), &release.namespace)
        .get(&fullname)
        .await?;
    let selector = serde_json::to_value(&deployment.spec.selector.match_labels)?;
    assert_eq!(stored.data["spec"]["selector"]["matchLabels"], selector);

    let monitor =
        Api::<DynamicObject>::namespaced_with(client, &release.namespace, &monitors_resource)
            .get(&fullname)
            .await?;
    assert_eq!(
        monitor
            .metadata
            .labels
            .unwrap_or_default()
            .get("release")
            .map(String::as_str),
        Some("prometheus")
    );
    assert_eq!(monitor.data["spec"]["selector"]["matchLabels"], selector);
    assert_eq!(
        monitor.data["spec"]["endpoints"],
        json!([{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}])
    );
    assert_eq!(
        monitor.data["spec"]["namespaceSelector"]["matchNames"],
        json!([release.namespace])
    );
    Ok(())
}

/// `shards: 2`: a Deployment per shard, each with its index, a Lease of its own and a
/// selector the other's pods do not match.
#[tokio::test]
async fn shards_render_one_deployment_each() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let release = shared_release(bed, &kubeconfig, "chart-shards").await?;
    let result = release
        .install_ok(&without_crd(
            json!({"shards": 2, "selector": "tier!=legacy"}),
        ))
        .await?;
    let docs = manifest_docs(&result)?;
    let deployments: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Deployment").collect();
    assert_eq!(deployments.len(), 2);
    for (i, deployment) in deployments.iter().enumerate() {
        assert_eq!(
            deployment["metadata"]["name"],
            format!("{}-shard-{i}", release.fullname())
        );
        let args: Vec<String> = serde_json::from_value(
            deployment
                .pointer("/spec/template/spec/containers/0/args")
                .cloned()
                .unwrap_or_default(),
        )?;
        for want in [
            format!("--shard={i}/2"),
            format!("--lease-name=branchpipeline-controller-shard-{i}"),
            "--selector=tier!=legacy".to_string(),
        ] {
            assert!(args.contains(&want), "{want} missing in {args:?}");
        }
        let selector = &deployment["spec"]["selector"]["matchLabels"];
        assert_eq!(selector["branchpipeline.dev/shard"], i.to_string());
        assert_eq!(
            deployment["spec"]["template"]["metadata"]["labels"]["branchpipeline.dev/shard"],
            i.to_string()
        );
    }
    Ok(())
}

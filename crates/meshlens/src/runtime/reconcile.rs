//! Following `mesh.yaml` while `up` runs: when a workload's replicas change, or a workload is added,
//! removed or changed (command, env, calls, port), the instances are started and stopped to match.
//! Services, profiles and splits are the control plane's business (it hot-reloads the directory).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meshlens_api::mesh::{Mesh, Workload};

use super::mesh::{self, MESH_FILE};
use super::plan::{self, Instance, InstanceContext};
use super::ports::PortPicker;
use super::supervisor::Supervisor;

/// How often `mesh.yaml` is looked at.
const POLL: Duration = Duration::from_millis(300);

pub struct Reconciler {
    pub sup: Arc<Supervisor>,
    pub ctx: InstanceContext,
    pub mesh_dir: PathBuf,
    pub stop_grace: Duration,
    pub ready_timeout: Duration,
    /// `ns/instance` → (the workload's fingerprint, the instance).
    running: BTreeMap<String, (String, Instance)>,
    stamp: Option<(SystemTime, u64)>,
}

/// A workload's definition apart from its replica count: a change means its instances must restart.
fn fingerprint(w: &Workload) -> String {
    let mut w = w.clone();
    w.replicas = 0;
    serde_json::to_string(&w).unwrap_or_default()
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl Reconciler {
    pub fn new(
        sup: Arc<Supervisor>,
        mesh: &Mesh,
        instances: &[Instance],
        ctx: InstanceContext,
        stop_grace: Duration,
        ready_timeout: Duration,
    ) -> Self {
        let prints: BTreeMap<_, _> =
            mesh.spec.workloads.iter().map(|w| (key(&w.namespace, &w.name), fingerprint(w))).collect();
        let running = instances
            .iter()
            .map(|i| {
                let print = prints.get(&key(&i.namespace, &i.workload)).cloned().unwrap_or_default();
                (key(&i.namespace, &i.name), (print, i.clone()))
            })
            .collect();
        let mesh_dir = ctx.mesh_dir.clone();
        let mut r = Reconciler { sup, ctx, mesh_dir, stop_grace, ready_timeout, running, stamp: None };
        r.stamp = r.stamp_now();
        r
    }

    fn stamp_now(&self) -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(self.mesh_dir.join(MESH_FILE)).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    /// Polls `mesh.yaml` until the task is aborted.
    pub async fn watch(mut self) {
        loop {
            tokio::time::sleep(POLL).await;
            let stamp = self.stamp_now();
            if stamp.is_none() || stamp == self.stamp {
                continue;
            }
            // Let a writer finish (editors write in several steps).
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.stamp = self.stamp_now();
            // Act only on a directory the control plane accepts as a whole: an edit it rejects leaves the
            // running instances as they are, like the last good state it keeps serving.
            match (mesh::load(&self.mesh_dir), meshlens_control::load(&self.mesh_dir)) {
                (Ok(mesh), Ok(_)) => self.reconcile(&mesh).await,
                (Err(e), _) => self.sup.output().say(&format!("{e:#}\n(the running instances stay as they are)")),
                (Ok(_), Err(errors)) => self.sup.output().say(&format!(
                    "the mesh directory is invalid:\n{errors}\n(the running instances stay as they are)"
                )),
            }
        }
    }

    /// Starts and stops instances so they match `mesh`.
    pub async fn reconcile(&mut self, mesh: &Mesh) {
        let mut desired: BTreeMap<String, (String, &Workload, u32)> = BTreeMap::new();
        for w in &mesh.spec.workloads {
            let print = fingerprint(w);
            for index in 0..w.replicas {
                desired.insert(key(&w.namespace, &format!("{}-{index}", w.name)), (print.clone(), w, index));
            }
        }
        let remove: Vec<String> = self
            .running
            .iter()
            .filter(|(k, (print, _))| desired.get(*k).is_none_or(|(p, ..)| p != print))
            .map(|(k, _)| k.clone())
            .collect();
        let add: Vec<String> = desired
            .iter()
            .filter(|(k, (print, ..))| self.running.get(*k).is_none_or(|(p, _)| p != print))
            .map(|(k, _)| k.clone())
            .collect();
        if remove.is_empty() && add.is_empty() {
            return;
        }
        let out = self.sup.output().clone();
        let mut names = Vec::new();
        for k in &remove {
            if let Some((_, i)) = self.running.remove(k) {
                names.push(i.name.clone());
                names.push(i.proxy_spec.name.clone());
            }
        }
        if !remove.is_empty() {
            out.say(&format!("mesh.yaml changed: stopping {}", remove.join(", ")));
            self.sup.stop_named(&names, self.stop_grace).await;
        }
        for k in add {
            let Some((print, w, index)) = desired.get(&k) else { continue };
            let mut ports = PortPicker::new();
            let instance = plan::instance(w, *index, &self.ctx, &mut ports);
            ports.release();
            let instance = match instance {
                Ok(i) => i,
                Err(e) => {
                    out.say(&format!("cannot add {k}: {e:#}"));
                    continue;
                }
            };
            if instance.external() {
                out.say(&format!(
                    "mesh.yaml changed: external instance {k}: start its app on {} and its proxy with:\n  meshlens {}",
                    instance.app,
                    instance.proxy_spec.args.join(" ")
                ));
            } else {
                if let Err(e) = self.sup.start(instance.proxy_spec.clone(), self.ready_timeout).await {
                    out.say(&format!("cannot add {k}: {e}"));
                    continue;
                }
                if let Some(app) = &instance.app_spec
                    && let Err(e) = self.sup.start(app.clone(), self.ready_timeout).await
                {
                    out.say(&format!("cannot add {k}: {e}"));
                    continue;
                }
                out.say(&format!(
                    "mesh.yaml changed: started {k}: app {}, inbound {}, outbound {}, admin {}",
                    instance.app, instance.inbound, instance.outbound, instance.admin
                ));
            }
            self.running.insert(k, (print.clone(), instance));
        }
    }
}

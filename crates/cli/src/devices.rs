//! `softbus devices` and `softbus unpair`: the pairings of this machine's
//! node and client, read and changed in their stores.

use crate::{failure, usage};
use softbus_runtime::store;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DevicesArgs {
    /// Where this machine's client identity and pairings live (default: the
    /// user's data dir; the node's are read from there too).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct UnpairArgs {
    /// The paired device's id, or a unique prefix of it (at least 8 hex digits).
    device_id: String,
    /// Where this machine's client identity and pairings live (default: the
    /// user's data dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// The pairings of the node (DATA_DIR) and of the client (DATA_DIR/client).
fn pair_stores(
    data_dir: Option<PathBuf>,
) -> Result<Vec<(&'static str, softbus_runtime::store::PairStore)>, ExitCode> {
    let dir = data_dir.unwrap_or_else(store::default_data_dir);
    let mut out = Vec::new();
    for (role, d) in [("node", dir.clone()), ("client", dir.join("client"))] {
        out.push((
            role,
            softbus_runtime::store::PairStore::open(&d).map_err(failure)?,
        ));
    }
    Ok(out)
}

pub fn devices(a: DevicesArgs) -> ExitCode {
    let stores = match pair_stores(a.data_dir) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let mut n = 0;
    for (role, store) in &stores {
        let list = match store.load() {
            Ok(l) => l,
            Err(e) => return failure(e),
        };
        for d in list {
            n += 1;
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"event": "paired_device", "role": role, "device_id": d.device_id, "public_key": d.public_key, "paired_at": d.paired_at, "id": d.id_proof()})
                );
            } else {
                let claimed = match d.id_proof() {
                    "claimed" => "\tid claimed (not derived from its key)",
                    _ => "",
                };
                println!(
                    "{role}\t{}\tpaired at {}{claimed}",
                    d.device_id, d.paired_at
                );
            }
        }
    }
    if n == 0 && !a.json {
        eprintln!("softbus: no paired devices (pair with softbus pair --peer IP --pin PIN)");
    }
    ExitCode::SUCCESS
}

pub fn unpair(a: UnpairArgs) -> ExitCode {
    let stores = match pair_stores(a.data_dir) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let mut ids = Vec::new();
    for (_, store) in &stores {
        match store.load() {
            Ok(d) => ids.extend(d.into_iter().map(|d| d.device_id)),
            Err(e) => return failure(e),
        }
    }
    use softbus_runtime::store::DeviceQueryError;
    let id = match softbus_runtime::store::resolve_device_id(&a.device_id, &ids) {
        Ok(id) => id,
        Err(e @ DeviceQueryError::Unknown(_)) => {
            return failure(format!("{} is not paired ({e})", a.device_id))
        }
        Err(e) => return usage(e),
    };
    let mut removed = false;
    for (role, store) in &stores {
        match store.remove(&id) {
            Ok(true) => {
                removed = true;
                println!("unpaired {id} ({role})");
            }
            Ok(false) => {}
            Err(e) => return failure(e),
        }
    }
    if removed {
        ExitCode::SUCCESS
    } else {
        failure(format!("{id} is not paired"))
    }
}

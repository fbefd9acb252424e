//! Installs the C headers and a pkg-config file beside the built library:
//! `target/<profile>/include/softbus/*.h` and `target/<profile>/pkgconfig/softbus.pc`,
//! so `cargo build -p softbus-capi` is the whole build (no make).

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out.
    let Some(profile_dir) = out.ancestors().nth(3).map(PathBuf::from) else {
        return;
    };
    let include = profile_dir.join("include").join("softbus");
    let pkgconfig = profile_dir.join("pkgconfig");
    let _ = std::fs::create_dir_all(&include);
    let _ = std::fs::create_dir_all(&pkgconfig);
    for h in ["discovery_error.h", "discovery_service.h", "session.h"] {
        let src = manifest.join("include").join(h);
        println!("cargo:rerun-if-changed={}", src.display());
        let _ = std::fs::copy(&src, include.join(h));
    }
    let pc = format!(
        "prefix={}\nlibdir=${{prefix}}\nincludedir=${{prefix}}/include/softbus\n\nName: softbus\nDescription: softbus_lite's C API over the softbus node\nVersion: {}\nLibs: -L${{libdir}} -lsoftbus\nLibs.private: -lpthread -ldl -lm\nCflags: -I${{includedir}}\n",
        profile_dir.display(),
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
    let _ = std::fs::write(pkgconfig.join("softbus.pc"), pc);
}

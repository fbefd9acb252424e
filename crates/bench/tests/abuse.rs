//! The abuse suite as a test (issue 7): 20 paired clients discover,
//! authenticate and echo while every attack runs; all of them succeed, no
//! guess or unauthenticated offer gets in, garbage connections are closed, and
//! a session hog holds no more than its address's share.
//! Timing is reported by `softbus bench abuse`, never asserted here.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion

#[test]
fn paired_clients_get_through_every_attack() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_softbus-bench"))
        .args([
            "abuse",
            "--clients",
            "20",
            "--messages",
            "5",
            "--rounds",
            "1",
            "--limit",
            "60",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for phase in ["without_attacks", "under_attack"] {
        assert_eq!(r[phase]["succeeded"], 20, "{phase}: {r}");
        assert_eq!(r[phase]["discovered"], 20, "{phase}: {r}");
    }
    let attacks = r["attacks"].as_object().unwrap();
    let n = |k: &str| {
        attacks
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    assert_eq!(n("pin guess: right (!)"), 0, "{r}");
    assert_eq!(n("http: offer ACCEPTED (!)"), 0, "{r}");
    // The attacks really ran.
    // The guessing was stopped: by the address's lockout, a closed
    // connection, or (when the node-wide pause comes first, as the guessers'
    // order decides) by the paused PIN pairing.
    assert!(
        n("pin guess: refused or closed") + n("pin guess: refused (pairing paused)") > 0,
        "{r}"
    );
    for k in [
        "pake flood: 5 requests sent",
        "idle auth: connection held",
        "tcp garbage: closed by the node",
        "slow http: connections",
        "slow body: connections",
        "slow body: closed by the node",
        "http: no token",
        "http: wrong token",
        "http: foreign cookie",
    ] {
        assert!(n(k) > 0, "{k}: {r}");
    }
    assert_eq!(n("tcp garbage: still open after 2 s"), 0, "{r}");
    // The session hog holds its address's share (16), no more, and is told
    // why the rest were refused; the paired clients above all got theirs.
    assert_eq!(n("session hog: sessions held"), 16, "{r}");
    assert_eq!(n("session hog: refused, its address full"), 16, "{r}");
    assert_eq!(n("session hog: refused otherwise"), 0, "{r}");
    // 5 wrong guesses per address per minute, 8 addresses: at most 40 answered.
    assert!(n("pin guess: answered wrong") <= 40, "{r}");
}

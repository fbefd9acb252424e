//! The README's walkthroughs, run as written: the commands and their sample
//! outputs live in one place, README.md, and this test reads them from there.
//! It starts the node the walkthrough starts (`softbus node ...`), runs every
//! `$ softbus ...` line in order and compares what each prints with the
//! sample below it, and finds the node's sample log lines in what the node
//! printed. What differs from run to run (device ids, ports, times, the host
//! name) is masked on both sides; everything else must match.
//!
//! Runs in a loopback-only network namespace the test creates, with HOME and
//! XDG_DATA_HOME in a temporary directory (the walkthrough uses the default
//! data directory and the default web address); skipped with a message where
//! namespaces cannot be made, unless SOFTBUS_REQUIRE_INTEROP=1.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use softbus_testkit::interop::LoopbackNs as Ns;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::*;

/// What one walkthrough asks for: the node to start, the commands with their
/// sample outputs, and lines the node prints.
#[derive(Debug, Default)]
struct Walkthrough {
    node: Option<String>,
    steps: Vec<(String, Vec<String>)>,
    node_prints: Vec<String>,
}

/// The fenced blocks of the README's `## Walkthrough` sections.
fn walkthrough(readme: &str) -> Walkthrough {
    let mut w = Walkthrough::default();
    let mut in_walkthrough = false;
    let mut block: Option<Vec<&str>> = None;
    let mut prose = String::new();
    let mut new_paragraph = false;
    for line in readme.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            in_walkthrough = title.starts_with("Walkthrough");
            continue;
        }
        if !in_walkthrough {
            continue;
        }
        if line.starts_with("```") {
            match block.take() {
                None => block = Some(Vec::new()),
                Some(lines) => take_block(&mut w, &lines, &prose),
            }
            continue;
        }
        // The paragraph just before a block says what the block is.
        match &mut block {
            Some(lines) => lines.push(line),
            None if line.trim().is_empty() => new_paragraph = true,
            None => {
                if std::mem::take(&mut new_paragraph) {
                    prose.clear();
                }
                prose.push(' ');
                prose.push_str(line);
            }
        }
    }
    w
}

fn take_block(w: &mut Walkthrough, lines: &[&str], prose_before: &str) {
    if let Some(node) = lines.iter().find(|l| l.starts_with("softbus node ")) {
        w.node = Some(node.to_string());
    } else if lines.iter().any(|l| l.starts_with("$ ")) {
        for l in lines {
            match l.strip_prefix("$ ") {
                Some(cmd) => w.steps.push((cmd.to_owned(), Vec::new())),
                None => w.steps.last_mut().unwrap().1.push(l.to_string()),
            }
        }
    } else if prose_before.contains("node prints") {
        w.node_prints.extend(lines.iter().map(|l| l.to_string()));
    }
}

/// Words of a shell command line, with "double quoted" words.
fn shell_words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmd.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

/// A line with what changes between runs replaced: runs of 12 or more hex
/// digits (device ids and their short forms) by `<ID>`, other numbers by
/// `<N>`, and the host name (the client's device name) by `<HOST>`.
fn mask(line: &str, host: &str) -> String {
    let line = line.replace(host, "<HOST>");
    let mut out = String::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let hex = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || ('A'..='F').contains(c))
            .count();
        let num = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == '.')
            .count();
        if hex >= 12 {
            out.push_str("<ID>");
            i += hex;
        } else if num > 0 && chars[i].is_ascii_digit() {
            out.push_str("<N>");
            i += num;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let w = walkthrough(&readme);
    // The README still has its walkthrough: a node, sends, a pairing.
    let node_cmd = w.node.clone().expect("the walkthrough starts a node");
    assert!(w.steps.len() >= 5, "{w:?}");
    assert!(w.steps.iter().any(|(c, _)| c.starts_with("softbus pair ")));
    assert!(!w.node_prints.is_empty(), "{w:?}");

    let Some(ns) = Ns::create("sbrm") else {
        return;
    };
    let home = temp_dir("readme");
    let in_ns = |words: &[String]| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns.0, bin()])
            .args(&words[1..])
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env_remove("SOFTBUS_LOG");
        c
    };
    let mut node = in_ns(&shell_words(&node_cmd))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = node.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(ready.starts_with("softbus node kitchen"), "{ready}");

    let host = softbus_runtime::net::host_name();
    // The README's samples were taken on a machine named `vm` (the client's
    // device name is the host name).
    const SAMPLE_HOST: &str = "vm";
    for (cmd, sample) in &w.steps {
        let words = shell_words(cmd);
        assert_eq!(words[0], "softbus", "{cmd}");
        let o = in_ns(&words).output().unwrap();
        assert!(o.status.success(), "{cmd}: {o:?}");
        let got: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| mask(l, &host))
            .collect();
        let want: Vec<String> = sample.iter().map(|l| mask(l, SAMPLE_HOST)).collect();
        assert_eq!(got, want, "`{cmd}` prints what the README shows");
    }

    // The node's lines the README quotes are among those it printed.
    std::thread::sleep(Duration::from_millis(300));
    let printed: Vec<String> = rx.try_iter().map(|l| mask(&l, &host)).collect();
    for l in &w.node_prints {
        let want = mask(l, SAMPLE_HOST);
        assert!(
            printed.contains(&want),
            "the node did not print {want:?}: {printed:#?}"
        );
    }
    let _ = node.kill();
    let _ = node.wait();
    drop(ns);
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn masking_keeps_what_matters() {
    assert_eq!(
        mask(
            "kitchen\t0558654C610863DE\t127.0.0.2\tauth port 44531",
            "vm"
        ),
        "kitchen\t<ID>\t<N>\tauth port <N>"
    );
    assert_eq!(
        mask("verified vm (733E64AC3010…) at 127.0.0.3", "vm"),
        "verified <HOST> (<ID>…) at <N>"
    );
    // Words and short numbers stay apart from ids.
    assert_ne!(
        mask("session 1 opened", "vm"),
        mask("session 1 closed", "vm")
    );
    assert_eq!(
        shell_words("softbus send --pin 1234 \"hello softbus\""),
        ["softbus", "send", "--pin", "1234", "hello softbus"]
    );
}

//! From nothing to a served resource: `corral new` in each language into a
//! new project, the end-to-end test it writes (which runs `corral build`,
//! serves the project and calls the resource), then an edit of each
//! handler under `corral serve --watch`, seen in the answers with no failed
//! request while the new versions swap in.

use crate::common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const LANGUAGES: [(&str, &str, &str); 3] = [
    ("rust", "hello-rs", "src/lib.rs"),
    ("python", "hello-py", "app.py"),
    ("js", "hello-js", "app.js"),
];

/// `corral ARGS` in `project`; its status and output.
fn corral(project: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(common::paths::corral_bin());
    command.args(args).current_dir(project);
    common::paths::without_test_cargo_env(&mut command);
    // Rust components reuse the workspace's compiled dependencies.
    command.env("CARGO_TARGET_DIR", common::paths::target_dir());
    command.output().expect("running corral")
}

fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "corral failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Kills a `corral serve` when the test ends, however it ends.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_components_build_serve_and_change_under_watch() {
    let project = tempfile::tempdir().unwrap();
    let project = project.path();
    for (language, name, _) in LANGUAGES {
        let started = Instant::now();
        let wrote = ok(&corral(project, &["new", language, name]));
        assert!(wrote.contains(&format!("tests/{name}.sh")), "{wrote}");
        // The test it wrote builds the project, serves it and checks the answers.
        let mut test = Command::new("bash");
        test.arg(format!("tests/{name}.sh"))
            .current_dir(project)
            .env("CORRAL", common::paths::corral_bin())
            .env("CARGO_TARGET_DIR", common::paths::target_dir());
        common::paths::without_test_cargo_env(&mut test);
        let out = test.output().expect("running the generated test");
        assert!(
            out.status.success(),
            "tests/{name}.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "{language}: corral new to a passing end-to-end test in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    // Refused: a name that exists, one that is not a component name, a bad mount.
    let again = corral(project, &["new", "python", "hello-py"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{again:?}"
    );
    let bad = corral(project, &["new", "rust", "Hello World"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("component name \"Hello World\" must be"),
        "{bad:?}"
    );
    let mount = corral(project, &["new", "js", "other", "--mount", "/a/{x}"]);
    assert!(
        String::from_utf8_lossy(&mount.stderr).contains("mount \"/a/{x}\" must be a path"),
        "{mount:?}"
    );
    assert!(!project.join("components/other").exists());

    // Under --watch: each handler edited to require `title` instead of `name`.
    let data = project.join("data");
    let mut serve = Command::new(common::paths::corral_bin());
    serve
        .args([
            "serve",
            "--watch",
            "--log-json",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .current_dir(project)
        .env("CARGO_TARGET_DIR", common::paths::target_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    common::paths::without_test_cargo_env(&mut serve);
    let mut child = serve.spawn().expect("starting corral serve --watch");
    let stdout = child.stdout.take().unwrap();
    let _serving = Serving(child);
    // Read to the end, so that the host never writes to a closed pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.strip_prefix("corral listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("corral serve --watch printed its address");
    let token = ok(&corral(
        project,
        &[
            "token",
            "--sub",
            "dev",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    ))
    .trim()
    .to_owned();
    let client = reqwest::Client::new();

    // Reads of every resource all along, none of which may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (client, url, stop, served, failed) = (
            client.clone(),
            url.clone(),
            stop.clone(),
            served.clone(),
            failed.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for (_, name, _) in LANGUAGES {
                    match client.get(format!("{url}/{name}")).send().await {
                        Ok(r) if r.status() == 200 => served.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        })
    };
    for (language, name, file) in LANGUAGES {
        let path = project.join("components").join(name).join(file);
        let source = std::fs::read_to_string(&path).unwrap();
        let edited = source
            .replacen("\"name\"", "\"title\"", 1)
            .replacen("'name'", "'title'", 1);
        assert_ne!(
            source, edited,
            "{language}: the template names its required key"
        );
        let saved = Instant::now();
        std::fs::write(&path, edited).unwrap();
        let deadline = saved + Duration::from_secs(240);
        loop {
            let reply = client
                .post(format!("{url}/{name}"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"title": "the new key"}))
                .send()
                .await
                .unwrap();
            let status = reply.status().as_u16();
            let body = reply.text().await.unwrap();
            if status == 201 {
                break;
            }
            // The old version does not know the key.
            assert!(
                status == 400 && body.contains("Unknown key(s): title"),
                "{language}: unexpected answer {status} {body}"
            );
            assert!(
                Instant::now() < deadline,
                "{language}: the edit was not served within 240 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "{language}: saved to the first answer of the new version in {:.1} s",
            saved.elapsed().as_secs_f64()
        );
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "reads failed while versions swapped"
    );
    assert!(served.load(Ordering::Relaxed) > 0);
}

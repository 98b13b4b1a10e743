//! The browser test harness: the system Chromium driven through chromedriver (WebDriver), the
//! real `pratica serve` process on a fresh SQLite file, console users and API tokens made with
//! the real CLI, axe-core injected into the pages, screenshots in target/screenshots/.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use pratica_tests::backend::ScratchDir;
use pratica_tests::{pratica_bin, repo_path};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

/// Debian's paths; `PRATICA_CHROMIUM` and `PRATICA_CHROMEDRIVER` override them.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Desktop and phone viewports every page is checked at.
pub const WIDE: (u32, u32) = (1280, 800);
pub const NARROW: (u32, u32) = (390, 844);

/// The password of every console user the tests create (the CLI wants at least 12 characters).
pub const PASSWORD: &str = "correct-horse-battery";

/// The tools the browser tests need, or why they cannot run.
pub struct Tools {
    pub chromium: String,
    pub chromedriver: String,
    pub axe_source: String,
}

impl Tools {
    /// Finds Chromium, chromedriver and axe-core. Missing tools are a failure in CI
    /// (`CI=true`) and a skip with a message elsewhere (`None`).
    pub fn find() -> Option<Tools> {
        let axe = repo_path("target/axe/node_modules/axe-core/axe.min.js");
        let chromium = std::env::var("PRATICA_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
        let chromedriver = std::env::var("PRATICA_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
        let mut missing = Vec::new();
        for tool in [&chromium, &chromedriver] {
            if !Path::new(tool).is_file() {
                missing.push(format!("{tool} (apt-get install -y chromium chromium-driver)"));
            }
        }
        if !axe.is_file() {
            missing.push(format!("{} (npm install --prefix target/axe axe-core@4.14.1)", axe.display()));
        }
        if missing.is_empty() {
            let axe_source = std::fs::read_to_string(&axe).expect("read axe.min.js");
            return Some(Tools { chromium, chromedriver, axe_source });
        }
        let message = format!("browser tests need: {}; ./scripts/test installs them", missing.join(", "));
        if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") {
            panic!("{message}");
        }
        eprintln!("SKIPPED console browser tests: {message} (set CI=true to make this an error)");
        None
    }
}

/// A free TCP port on the loopback interface (bound, read and released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// The suites' one poll loop (`pratica_tests::wait`).
pub use pratica_tests::wait::wait_until;

/// A process that is killed when the test ends (also on panic). A process `group` leader is
/// killed with its whole group: chromedriver's browser processes must not outlive a failed test.
pub struct Process {
    child: Child,
    log: PathBuf,
    group: bool,
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_group();
    }
}

impl Process {
    fn spawn(mut command: Command, log: PathBuf, group: bool) -> Process {
        if group {
            command.process_group(0);
        }
        let file = std::fs::File::create(&log).expect("create the process log");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log handle"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Process { child, log, group }
    }

    /// The tail of the process's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Kills the process (and its group) and waits for it.
    pub async fn stop(mut self) {
        self.kill_group();
        let _ = self.child.kill().await;
    }

    fn kill_group(&self) {
        if let (true, Some(pid)) = (self.group, self.child.id()) {
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
        }
    }
}

/// The `pratica` server under test: one process, its database, workflows, users and tokens.
pub struct Server {
    pub base: String,
    pub admin_token: String,
    http: reqwest::Client,
    pub process: Process,
}

/// Runs a `pratica` CLI command in `dir` with `stdin`, returning its standard output.
async fn cli(dir: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(pratica_bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pratica");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).await.expect("write stdin");
    drop(input);
    let out = child.wait_with_output().await.expect("pratica finished");
    assert!(
        out.status.success(),
        "pratica {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A console user: `pratica user create NAME --role R [--office O]... [--task-role T]...`.
pub struct User<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub offices: &'a [&'a str],
    pub task_roles: &'a [&'a str],
}

impl Server {
    /// Writes the workflow and schema files into `scratch`, creates the users and an admin
    /// token with the CLI, then starts `pratica serve --listen` and waits for /healthz.
    pub async fn start(scratch: &ScratchDir, files: &[(&str, &str)], users: &[User<'_>]) -> Server {
        let dir = scratch.0.clone();
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("create folder");
            std::fs::write(&path, text).expect("write test file");
        }
        let db = format!("sqlite://{}", dir.join("pratica.db").display());
        for u in users {
            let mut args = vec!["user", "create", u.name, "--role", u.role, "--password-stdin", "--db", &db];
            for o in u.offices {
                args.extend(["--office", o]);
            }
            for t in u.task_roles {
                args.extend(["--task-role", t]);
            }
            cli(&dir, &args, &format!("{PASSWORD}\n")).await;
        }
        let admin_token =
            cli(&dir, &["token", "create", "--name", "browser-tests", "--role", "admin", "--db", &db], "").await.trim().to_string();
        assert!(admin_token.starts_with("prt_"), "unexpected token output {admin_token:?}");

        let port = free_port();
        let mut command = Command::new(pratica_bin());
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--lease", "5s", "--workflows", "workflows", "--db", &db])
            .current_dir(&dir)
            .env("RUST_LOG", "info");
        let process = Process::spawn(command, dir.join("serve.log"), false);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let server = Server { base: format!("http://127.0.0.1:{port}"), admin_token, http: reqwest::Client::new(), process };
        let health = format!("{}/healthz", server.base);
        let http = server.http.clone();
        wait_until("pratica serve to answer /healthz", Duration::from_secs(30), async || {
            http.get(&health).send().await.is_ok_and(|r| r.status().is_success())
        })
        .await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An authenticated API call with the admin token; panics with the body on a non-2xx answer.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), self.url(path)).bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path} answered {status}: {text}\nserver log:\n{}", self.process.log_tail());
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("a JSON answer") }
    }

    /// Starts an instance through the API and returns its id.
    pub async fn start_instance(&self, workflow: &str, input: Value) -> String {
        let answer = self.api(reqwest::Method::POST, "/api/v1/instances", Some(json!({ "workflow": workflow, "input": input }))).await;
        answer["id"].as_str().expect("the started instance's id").to_string()
    }

    pub async fn instance(&self, id: &str) -> Value {
        self.api(reqwest::Method::GET, &format!("/api/v1/instances/{id}"), None).await
    }

    /// The open (or claimed) tasks of one instance, from the API.
    pub async fn open_tasks(&self, instance: &str) -> Vec<Value> {
        let answer = self.api(reqwest::Method::GET, "/api/v1/tasks?limit=500", None).await;
        let items = answer.get("items").cloned().unwrap_or(answer);
        items
            .as_array()
            .expect("a task list")
            .iter()
            .filter(|t| t["instance_id"] == instance && matches!(t["status"].as_str(), Some("open" | "claimed")))
            .cloned()
            .collect()
    }

    /// Waits until the instance has exactly one open task at `step` and returns its id.
    pub async fn wait_task(&self, instance: &str, step: &str) -> String {
        let mut found = None;
        wait_until(&format!("a task at {step} of {instance}"), Duration::from_secs(20), async || {
            found = self.open_tasks(instance).await.into_iter().find(|t| t["step_id"] == step);
            found.is_some()
        })
        .await;
        found.and_then(|t| t["id"].as_str().map(str::to_string)).expect("a task id")
    }
}

/// chromedriver on a free port, and one headless Chromium session on it.
pub struct Browser {
    pub client: Client,
    driver: Process,
    screenshots: PathBuf,
    axe_source: String,
}

impl Browser {
    pub async fn start(tools: Tools, scratch: &ScratchDir) -> Browser {
        let port = free_port();
        let mut command = Command::new(&tools.chromedriver);
        command.arg(format!("--port={port}"));
        let driver = Process::spawn(command, scratch.0.join("chromedriver.log"), true);
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let http = reqwest::Client::new();
        wait_until("chromedriver to listen", Duration::from_secs(20), async || {
            http.get(&status).send().await.is_ok_and(|r| r.status().is_success())
        })
        .await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": tools.chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    format!("--window-size={},{}", WIDE.0, WIDE.1), "--lang=en-US", "--hide-scrollbars",
                ],
                "prefs": { "intl.accept_languages": "en-US,en" },
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session: {e}\nchromedriver log:\n{}", driver.log_tail()));
        let screenshots = repo_path("target/screenshots");
        std::fs::create_dir_all(&screenshots).expect("create target/screenshots");
        let browser = Browser { client, driver, screenshots, axe_source: tools.axe_source };
        browser.resize(WIDE).await;
        browser
    }

    pub async fn stop(self) {
        let _ = self.client.close().await;
        self.driver.stop().await;
    }

    /// Sets the viewport (not the outer window) to `size`: headless Chromium has no window
    /// decorations, but the size is checked and corrected once if it differs.
    pub async fn resize(&self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.expect("set window size");
        let inner = self.client.execute("return [window.innerWidth, window.innerHeight]", vec![]).await.expect("viewport");
        let (w, h) = (inner[0].as_u64().unwrap_or(0) as u32, inner[1].as_u64().unwrap_or(0) as u32);
        if (w, h) != (width, height) && w > 0 && h > 0 {
            self.client.set_window_size(width + (width - w.min(width)), height + (height - h.min(height))).await.expect("set window size");
        }
    }

    /// Navigates to `url` and waits for the document to be loaded.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("goto {url}: {e}"));
        self.wait_loaded().await;
    }

    async fn wait_loaded(&self) {
        let client = &self.client;
        wait_until("the page to load", Duration::from_secs(20), async || {
            client.execute("return document.readyState", vec![]).await.is_ok_and(|v| v == "complete")
        })
        .await;
    }

    /// Clicks `element` (a link or a submit button) and waits until the next page has loaded.
    pub async fn click_and_wait(&self, element: &Element) {
        self.client.execute("window.__praticaOldPage = true", vec![]).await.expect("mark the page");
        element.click().await.expect("click");
        let client = &self.client;
        wait_until("the next page", Duration::from_secs(20), async || {
            client
                .execute("return window.__praticaOldPage === undefined && document.readyState === 'complete'", vec![])
                .await
                .is_ok_and(|v| v == true)
        })
        .await;
    }

    pub async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => {
                let text = self.client.find(Locator::Css("body")).await.ok();
                let text = match text {
                    Some(body) => body.text().await.unwrap_or_default(),
                    None => String::new(),
                };
                panic!("no element `{css}` on {}: {e}\npage text:\n{text}", self.location().await)
            }
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.expect("find_all")
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    pub async fn location(&self) -> String {
        self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default()
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.map(|u| u.path().to_string()).unwrap_or_default()
    }

    /// The visible text of the page's body.
    pub async fn body_text(&self) -> String {
        self.find("body").await.text().await.unwrap_or_default()
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear field");
        field.send_keys(text).await.expect("type into field");
    }

    /// Signs in through the login page and checks that the inbox answers.
    pub async fn login(&self, server: &Server, username: &str) {
        self.client.delete_all_cookies().await.ok();
        self.goto(&server.url("/console/login?lang=en")).await;
        self.fill("#username", username).await;
        self.fill("#password", PASSWORD).await;
        let submit = self.find("#login").await;
        self.click_and_wait(&submit).await;
        let path = self.path().await;
        assert!(
            path.starts_with("/console") && !path.starts_with("/console/login"),
            "{username} did not get past the login page (at {path}): {}",
            self.body_text().await
        );
    }

    /// Saves a PNG of the viewport as target/screenshots/<name>.png.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.screenshots.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// The serious and critical axe-core violations of the current page: `{id, impact, help, nodes}`.
    pub async fn axe_violations(&self, page: &str) -> Vec<Value> {
        let loaded = self.client.execute("return typeof window.axe", vec![]).await.expect("check axe");
        if loaded != "object" {
            self.client.execute(&self.axe_source, vec![]).await.expect("inject axe-core");
        }
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
                .then(r => done(JSON.stringify(r.violations
                    .filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                 nodes: v.nodes.map(n => n.target.join(' ') + ' — ' + n.failureSummary) })))))
                .catch(e => done('axe failed: ' + e));
        "#;
        let answer = self.client.execute_async(script, vec![]).await.expect("run axe-core");
        let text = answer.as_str().unwrap_or_default();
        serde_json::from_str(text).unwrap_or_else(|_| panic!("{page}: {text}"))
    }

    /// Runs axe-core on the current page and fails listing every serious or critical violation.
    pub async fn assert_accessible(&self, page: &str) {
        let violations = self.axe_violations(page).await;
        if !violations.is_empty() {
            let mut report =
                format!("{page} ({}): {} serious/critical accessibility violation(s):\n", self.location().await, violations.len());
            for v in &violations {
                report.push_str(&format!(
                    "- {} [{}]: {}\n",
                    v["id"].as_str().unwrap_or("?"),
                    v["impact"].as_str().unwrap_or("?"),
                    v["help"].as_str().unwrap_or("")
                ));
                for node in v["nodes"].as_array().into_iter().flatten() {
                    report.push_str(&format!("    {}\n", node.as_str().unwrap_or("").replace('\n', " ")));
                }
            }
            panic!("{report}");
        }
    }

    /// Whether `css` is displayed and usable in the viewport once scrolled to (as a user
    /// would): not hidden, not covered by another element, and horizontally inside the viewport
    /// (an element wider than the viewport, such as a table in a scrolling region, must start
    /// inside it).
    pub async fn in_view(&self, css: &str) -> Result<(), String> {
        let script = r#"
            const el = document.querySelector(arguments[0]);
            if (!el) return 'missing';
            el.scrollIntoView({ block: 'center', inline: 'nearest' });
            const r = el.getBoundingClientRect();
            const s = getComputedStyle(el);
            const w = window.innerWidth;
            if (r.width <= 0 || r.height <= 0 || s.visibility === 'hidden' || s.display === 'none') return 'is not displayed';
            if (r.left < -1 || r.left >= w) return `starts outside the viewport (left ${r.left}, viewport width ${w})`;
            if (r.width <= w && r.right > w + 1) return `is cut off on the right (right ${r.right}, viewport width ${w})`;
            const x = Math.min(r.left + r.width / 2, w - 1), y = Math.min(Math.max(r.top + r.height / 2, 0), window.innerHeight - 1);
            const hit = document.elementFromPoint(x, y);
            if (hit && !el.contains(hit) && !hit.contains(el)) return `is covered by <${hit.tagName.toLowerCase()}${hit.id ? '#' + hit.id : ''}>`;
            return 'ok';
        "#;
        let answer = self.client.execute(script, vec![json!(css)]).await.map_err(|e| e.to_string())?;
        match answer.as_str() {
            Some("ok") => Ok(()),
            other => Err(format!("`{css}` {}", other.unwrap_or("?"))),
        }
    }

    async fn assert_controls(&self, name: &str, (width, height): (u32, u32), key_controls: &[&str]) {
        for css in key_controls {
            if let Err(e) = self.in_view(css).await {
                self.screenshot(&format!("{name}-{width}x{height}-FAILED")).await;
                panic!("{name} at {width}×{height}: {e}");
            }
        }
        self.client.execute("window.scrollTo(0, 0)", vec![]).await.expect("scroll back");
    }

    /// Whether the page is wider than the viewport (it scrolls horizontally).
    pub async fn scrolls_horizontally(&self) -> (bool, String) {
        let widths = self
            .client
            .execute("return [document.documentElement.scrollWidth, window.innerWidth]", vec![])
            .await
            .expect("measure the page");
        let (scroll, inner) = (widths[0].as_u64().unwrap_or(u64::MAX), widths[1].as_u64().unwrap_or(0));
        (scroll > inner, format!("scrollWidth {scroll}, innerWidth {inner}"))
    }

    /// The page checks shared by every console page: axe at 1280×800, a screenshot at both
    /// sizes, no horizontal scrolling at 390 px and the key controls visible at both sizes.
    pub async fn check_page(&self, name: &str, key_controls: &[&str]) {
        self.resize(WIDE).await;
        self.screenshot(&format!("{name}-1280x800")).await;
        self.assert_accessible(name).await;
        self.assert_controls(name, WIDE, key_controls).await;
        self.resize(NARROW).await;
        self.screenshot(&format!("{name}-390x844")).await;
        let (scrolls, widths) = self.scrolls_horizontally().await;
        assert!(!scrolls, "{name} scrolls horizontally at {} px: {widths}", NARROW.0);
        self.assert_controls(name, NARROW, key_controls).await;
        self.resize(WIDE).await;
    }
}

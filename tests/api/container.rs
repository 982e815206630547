//! Checks of the container files that need no Docker engine, since CI has none.
//!
//! The Dockerfile's runtime stage is read and the binary is started exactly as
//! the image would start it (its ENTRYPOINT, CMD, ENV and non-root USER), so a
//! typo in any of them fails here rather than on someone's Docker host. The
//! Compose file is held to what Tributary promises: no acknowledged reading is
//! lost, and Redis cannot be reached from outside. `scripts/compose-smoke` runs
//! the real stack where a Docker engine exists.

use std::collections::BTreeMap;
use std::fs::Permissions;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use crate::common::{Process, free_port};
use serde_norway::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_tributary");

/// How long the server may take to answer, and how often to ask.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);
const POLL_EVERY: Duration = Duration::from_millis(20);

/// `docker stop` waits this long after SIGTERM before it sends SIGKILL.
const DOCKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The user to run as when the image's USER is a name rather than a number.
const NOBODY: u32 = 65534;

// ---- the image, as the Dockerfile's runtime stage describes it --------------

#[tokio::test]
async fn the_image_starts_healthy_and_its_healthcheck_notices_when_it_stops() {
    let image = Image::from_dockerfile();
    let binary = ReachableBinary::new();
    let port = free_port();
    let (argv, healthcheck, env) = image.commands_on_loopback(binary.path(), port);

    let mut server = Server::start(&argv, &env, image.uid_gid());
    let url = format!("http://127.0.0.1:{port}/healthz");
    server.wait_until_healthz_answers_200(&url).await;
    server.assert_runs_as(image.uid_gid().0);

    let probe = run(&healthcheck, &env, image.uid_gid());
    assert!(
        probe.status.success(),
        "the Dockerfile's HEALTHCHECK {:?} exited with {} against a running server, so Docker would mark a \
         healthy container unhealthy.\n{}",
        image.healthcheck,
        probe.status,
        describe(&probe)
    );

    let status = server.stop_like_docker();
    assert!(
        status.success(),
        "tributary exited with {status} on SIGTERM (what `docker stop` sends); it should drain and exit 0.\n\
         Its log:\n{}",
        server.log()
    );

    let probe = run(&healthcheck, &env, image.uid_gid());
    assert_eq!(
        probe.status.code(),
        Some(1),
        "the Dockerfile's HEALTHCHECK {:?} should exit 1 (Docker's \"unhealthy\") once the server is gone, but \
         exited with {}.\n{}",
        image.healthcheck,
        probe.status,
        describe(&probe)
    );
}

#[test]
fn the_image_runs_as_a_non_root_user() {
    let image = Image::from_dockerfile();
    let user = image
        .user
        .as_deref()
        .expect("the Dockerfile's runtime stage has no USER, so the container would run as root: add `USER 65532:65532`");
    let name = user.split(':').next().unwrap_or_default();
    assert!(
        name != "root" && name != "0",
        "the Dockerfile's runtime stage ends with `USER {user}`, so the container runs as root; use a non-root user \
         such as 65532:65532"
    );
}

#[test]
fn every_base_image_is_pinned_to_a_version() {
    let dockerfile = read("Dockerfile");
    let bases: Vec<String> = instructions(&dockerfile)
        .into_iter()
        .filter(|(keyword, _)| keyword == "FROM")
        .map(|(_, args)| args.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    assert!(!bases.is_empty(), "the Dockerfile has no FROM");
    for image in bases {
        let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
        assert!(
            image.contains("@sha256:")
                || (tag.chars().next().is_some_and(|c| c.is_ascii_digit()) && tag != "latest"),
            "Dockerfile: FROM {image} is not pinned; use a version tag such as debian:13.7-slim, or a digest"
        );
    }
}

#[test]
fn every_stage_is_on_the_same_supported_debian_release() {
    let dockerfile = read("Dockerfile");
    let bases: Vec<String> = instructions(&dockerfile)
        .into_iter()
        .filter(|(keyword, _)| keyword == "FROM")
        .map(|(_, args)| args.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    for image in &bases {
        let reference = image.split('@').next().unwrap_or_default();
        let (name, tag) = reference.rsplit_once(':').unwrap_or((reference, ""));
        let name = name.rsplit('/').next().unwrap_or_default();
        // The Rust images name the codename (`1.95.0-slim-trixie`), Debian's
        // the version (`13.7-slim`), distroless the image (`cc-debian13`).
        let release = if name == "debian" {
            tag.split(['.', '-']).next().unwrap_or_default().to_owned()
        } else if let Some(version) = name.strip_prefix("cc-debian") {
            version.to_owned()
        } else {
            tag.rsplit('-').next().unwrap_or_default().to_owned()
        };
        assert!(
            release == "13" || release == "trixie",
            "Dockerfile: FROM {image} is not Debian 13 (trixie). Debian 12 is oldstable: build on \
             rust:<version>-slim-trixie and run on debian:13.x-slim, so that the binary links against the glibc \
             the runtime has"
        );
    }
}

#[test]
fn the_image_listens_on_all_interfaces_at_the_port_it_exposes() {
    let image = Image::from_dockerfile();
    let listen = image.env_var("TRIBUTARY_LISTEN");
    let (host, port) = listen.rsplit_once(':').unwrap_or_else(|| {
        panic!("the Dockerfile sets TRIBUTARY_LISTEN={listen:?}, which is not host:port")
    });
    assert!(
        host == "0.0.0.0" || host == "[::]",
        "the Dockerfile sets TRIBUTARY_LISTEN={listen}: inside a container it must listen on 0.0.0.0 (all \
         interfaces), or a published port never reaches it"
    );
    assert!(
        image.expose.iter().any(|exposed| exposed.trim_end_matches("/tcp") == port),
        "the Dockerfile sets TRIBUTARY_LISTEN={listen} but EXPOSEs {:?}: they should name the same port",
        image.expose
    );
}

// ---- docker-compose.yml -------------------------------------------------------

#[test]
fn compose_file_has_no_version_key() {
    let compose = Compose::load();
    assert!(
        compose.root.get("version").is_none(),
        "docker-compose.yml has a top-level `version:` key; the Compose specification ignores it and current \
         Docker Compose warns about it: remove it"
    );
}

#[test]
fn redis_is_reachable_only_from_the_compose_network() {
    let compose = Compose::load();
    let redis = compose.service("redis");
    for key in ["ports", "expose"] {
        if let Some(value) = redis.get(key) {
            panic!(
                "docker-compose.yml: services.redis.{key} is set to {}; no port of the store may be published: \
                 remove `{key}` (tributary reaches it as redis:6379 on the Compose network)",
                inline(value)
            );
        }
    }
    let network_mode = str_at(redis, "network_mode").unwrap_or_default();
    assert!(
        network_mode != "host",
        "docker-compose.yml: services.redis.network_mode is `host`, which puts Redis on every interface of the \
         host: remove it"
    );
}

#[test]
fn tributary_waits_for_a_healthy_redis() {
    let compose = Compose::load();
    let depends_on = compose.service("tributary").get("depends_on").unwrap_or_else(|| {
        panic!(
            "docker-compose.yml: services.tributary has no depends_on; add `depends_on: {{redis: {{condition: \
             service_healthy}}}}` so it starts once Redis answers"
        )
    });
    let condition = depends_on.get("redis").and_then(|redis| str_at(redis, "condition"));
    assert_eq!(
        condition,
        Some("service_healthy"),
        "docker-compose.yml: services.tributary.depends_on is {}; it needs `redis: {{condition: service_healthy}}` \
         so tributary starts only once Redis answers its healthcheck",
        inline(depends_on)
    );
}

#[test]
fn redis_fsyncs_every_write_to_its_append_only_file() {
    for file in STORE_FILES {
        redis_command_fsyncs_every_write(file);
    }
}

fn redis_command_fsyncs_every_write(file: &'static str) {
    let compose = Compose::load_file(file);
    let redis = compose.service("redis");
    let command = command_words(redis.get("command"));
    let option = |name: &str| {
        command.windows(2).find(|pair| pair[0] == name).map(|pair| pair[1].to_ascii_lowercase())
    };
    assert_eq!(
        option("--appendonly").as_deref(),
        Some("yes"),
        "{file}: services.redis.command is {command:?}; it must contain `--appendonly yes`, or Redis \
         keeps readings only in memory and periodic snapshots, and a crash loses acknowledged readings"
    );
    assert_eq!(
        option("--appendfsync").as_deref(),
        Some("always"),
        "{file}: services.redis.command is {command:?}; it must contain `--appendfsync always`, or \
         Redis acknowledges a write before it reaches the disk, and a power cut loses acknowledged readings"
    );
}

#[test]
fn redis_keeps_its_data_on_a_named_volume() {
    let compose = Compose::load();
    let volumes = compose.service("redis").get("volumes").and_then(Value::as_sequence);
    let mounts: Vec<(String, String, bool)> = volumes
        .into_iter()
        .flatten()
        .filter_map(|volume| match volume {
            Value::String(short) => {
                let mut parts = short.split(':');
                let source = parts.next()?.to_owned();
                let target = parts.next()?.to_owned();
                let named = !source.starts_with(['.', '/', '~', '$']);
                Some((source, target, named))
            }
            Value::Mapping(_) => Some((
                str_at(volume, "source")?.to_owned(),
                str_at(volume, "target")?.to_owned(),
                str_at(volume, "type") == Some("volume"),
            )),
            _ => None,
        })
        .collect();
    let Some((source, _, named)) =
        mounts.iter().find(|(_, target, _)| target.trim_end_matches('/') == "/data")
    else {
        panic!(
            "docker-compose.yml: services.redis mounts nothing at /data (its volumes: {mounts:?}), so Redis' \
             append-only file is lost with the container: mount a named volume, e.g. `redis-data:/data`"
        )
    };
    assert!(
        named,
        "docker-compose.yml: services.redis mounts {source:?} at /data, which is a bind mount, not a named volume: \
         use a named volume such as `redis-data:/data`, declared under the top-level `volumes:`"
    );
    assert!(
        compose.root.get("volumes").and_then(|volumes| volumes.get(source.as_str())).is_some(),
        "docker-compose.yml: services.redis mounts the volume {source:?} at /data, but the top-level `volumes:` \
         does not declare it"
    );
}

#[test]
fn the_store_is_valkey_pinned_to_a_release() {
    let compose = Compose::load();
    let image = str_at(compose.service("redis"), "image").expect(
        "docker-compose.yml: services.redis has no `image:`; use a pinned official image such as \
         valkey/valkey:8.1.8-alpine",
    );
    assert!(
        !image.contains('$'),
        "docker-compose.yml: services.redis.image is {image:?}: the store's version must be written out, not taken \
         from a variable, so that what runs is what was reviewed"
    );
    let tag = image
        .trim_start_matches("docker.io/")
        .split('@')
        .next()
        .unwrap_or_default()
        .strip_prefix("valkey/valkey:");
    let version: Option<Vec<u32>> = tag.and_then(|tag| {
        let parts: Vec<&str> = tag.split('-').next().unwrap_or_default().split('.').collect();
        (parts.len() == 3).then(|| parts.iter().map(|part| part.parse().ok()).collect())?
    });
    assert!(
        version.is_some_and(|version| version[..2] >= [7, 2][..]),
        "docker-compose.yml: services.redis.image is {image:?}; it must be the official Valkey image (BSD-3-Clause) \
         pinned to a full release, 7.2.0 or later (e.g. valkey/valkey:8.1.8-alpine), not a moving tag such as \
         valkey/valkey:8 or :latest. Redis belongs in compose.redis.yml, the opt-in override"
    );
}

#[test]
fn the_store_refuses_writes_past_maxmemory_instead_of_evicting() {
    for file in STORE_FILES {
        let compose = Compose::load_file(file);
        let command = command_words(compose.service("redis").get("command"));
        let option = |name: &str| {
            command.windows(2).find(|pair| pair[0] == name).map(|pair| with_defaults(&pair[1]))
        };
        let maxmemory = option("--maxmemory").unwrap_or_default();
        // `0` (and `0mb`) means no limit at all.
        let nonzero = maxmemory.trim_start_matches('0').starts_with(|c: char| c.is_ascii_digit());
        assert!(
            nonzero,
            "{file}: services.redis.command is {command:?}; it must set `--maxmemory` to a non-zero size (it is \
             {maxmemory:?}), or a flood of new vehicles grows the store until the host kills it"
        );
        assert_eq!(
            option("--maxmemory-policy").as_deref(),
            Some("noeviction"),
            "{file}: services.redis.command is {command:?}; it must set `--maxmemory-policy noeviction`: any other \
             policy makes the store drop readings it acknowledged once it is full"
        );
    }
}

#[test]
fn compose_gives_tributary_time_for_its_shutdown_delay_and_drain() {
    let compose = Compose::load();
    let tributary = compose.service("tributary");
    let env = env_of(tributary);
    let duration = |name: &str| {
        let value = env.get(name).unwrap_or_else(|| {
            panic!(
                "docker-compose.yml: services.tributary.environment does not set {name}; set it explicitly, so \
                 that stop_grace_period can be checked against it"
            )
        });
        humantime::parse_duration(value).unwrap_or_else(|e| {
            panic!("docker-compose.yml: services.tributary.environment.{name} is {value:?}, not a duration: {e}")
        })
    };
    let delay = duration("TRIBUTARY_SHUTDOWN_DELAY");
    let timeout = duration("TRIBUTARY_SHUTDOWN_TIMEOUT");
    assert!(
        !delay.is_zero(),
        "docker-compose.yml: TRIBUTARY_SHUTDOWN_DELAY is 0; give load balancers a few seconds (5s) to see /readyz \
         fail before the listener closes"
    );
    let grace = str_at(tributary, "stop_grace_period").unwrap_or("10s");
    let grace = humantime::parse_duration(grace).unwrap_or_else(|e| {
        panic!("docker-compose.yml: services.tributary.stop_grace_period is {grace:?}, not a duration: {e}")
    });
    assert!(
        grace > delay + timeout,
        "docker-compose.yml: services.tributary.stop_grace_period is {grace:?}, but the shutdown delay and drain \
         take up to {:?} ({delay:?} + {timeout:?}): Docker would SIGKILL Tributary halfway through its drain",
        delay + timeout
    );
}

/// The `${REDIS_PASSWORD:?…}` Compose requires, as a file writes it.
fn required_password(file: &str) -> String {
    let text = read(file);
    let start = text.find("${REDIS_PASSWORD:?").unwrap_or_else(|| {
        panic!("{file} never requires REDIS_PASSWORD as ${{REDIS_PASSWORD:?message}}")
    });
    let end = start + text[start..].find('}').unwrap() + 1;
    text[start..end].to_owned()
}

#[test]
fn tributary_uses_the_compose_redis_with_its_password() {
    let compose = Compose::load();
    let url = env_of(compose.service("tributary")).remove("TRIBUTARY_REDIS_URL");
    let password = required_password("docker-compose.yml");
    assert_eq!(
        url,
        Some(format!("redis://:{password}@redis:6379")),
        "docker-compose.yml: services.tributary.environment.TRIBUTARY_REDIS_URL should be \
         redis://:${{REDIS_PASSWORD:?…}}@redis:6379, the store on the Compose network with its password; \
         without it tributary falls back to its in-memory store and keeps nothing across restarts"
    );
}

#[test]
fn the_store_requires_a_password_and_compose_refuses_to_start_without_one() {
    for file in STORE_FILES {
        let compose = Compose::load_file(file);
        let redis = compose.service("redis");
        let command = command_words(redis.get("command"));
        let password = required_password(file);
        assert!(
            command.windows(2).any(|pair| pair[0] == "--requirepass" && pair[1] == password),
            "{file}: services.redis.command should end in `--requirepass {password}`, so the store \
             refuses clients without the password and Compose refuses to start without one; it is {command:?}"
        );
        assert!(
            password.contains("openssl rand -hex 32"),
            "{file}: the message should say how to make one"
        );
    }
    // The healthcheck's CLI reads it from the environment (not its command line).
    let compose = Compose::load();
    let env = env_of(compose.service("redis"));
    assert_eq!(
        env.get("REDISCLI_AUTH"),
        Some(&required_password("docker-compose.yml")),
        "docker-compose.yml: services.redis.environment.REDISCLI_AUTH should be the password, for the healthcheck"
    );
}

#[test]
fn the_api_is_published_on_this_host_only_by_default() {
    let compose = Compose::load();
    let ports = compose.service("tributary").get("ports").and_then(Value::as_sequence).unwrap();
    for port in ports {
        let host_ip = port.get("host_ip").map(scalar).unwrap_or_else(|| {
            panic!(
                "docker-compose.yml: services.tributary.ports entry {} has no host_ip",
                inline(port)
            )
        });
        assert_eq!(
            with_defaults(&host_ip),
            "127.0.0.1",
            "docker-compose.yml: with no .env, the API must be published on 127.0.0.1 only (auth is off \
             until keys are given): host_ip should be ${{TRIBUTARY_HOST_IP:-127.0.0.1}}"
        );
    }
}

#[test]
fn prometheus_scrapes_the_metrics_port_which_needs_no_token() {
    let compose = Compose::load();
    let listen = env_of(compose.service("tributary")).remove("TRIBUTARY_METRICS_LISTEN");
    let port = listen.as_deref().and_then(|listen| listen.rsplit_once(':')).map(|(_, port)| port);
    let port = port.unwrap_or_else(|| {
        panic!("docker-compose.yml: services.tributary.environment.TRIBUTARY_METRICS_LISTEN is not host:port")
    });
    let scrape = read("deploy/prometheus/prometheus.yml");
    assert!(
        scrape.contains(&format!("\"tributary:{port}\"")),
        "deploy/prometheus/prometheus.yml should scrape tributary:{port}, the metrics port: with auth \
         required, /metrics on the API port needs a token"
    );
    let published = published_targets(compose.service("tributary"));
    assert!(!published.contains(&port.to_owned()), "the metrics port must not be published");
}

#[test]
fn keys_given_to_compose_make_auth_required() {
    let compose = Compose::load();
    let tributary = compose.service("tributary");
    let env = env_of(tributary);
    assert_eq!(
        env.get("TRIBUTARY_AUTH_KEYS").map(String::as_str),
        Some("${TRIBUTARY_AUTH_KEYS:-}")
    );
    assert_eq!(env.get("TRIBUTARY_AUTH").map(String::as_str), Some("${TRIBUTARY_AUTH:-}"));
    let volumes: Vec<String> = tributary
        .get("volumes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(scalar)
        .collect();
    assert!(
        volumes.iter().any(|volume| volume == "./keys:/etc/tributary/keys:ro"),
        "docker-compose.yml: services.tributary.volumes should mount ./keys read-only at /etc/tributary/keys; \
         it has {volumes:?}"
    );
}

#[test]
fn compose_publishes_and_probes_what_the_image_serves() {
    let compose = Compose::load();
    let image = Image::from_dockerfile();
    let tributary = compose.service("tributary");

    let targets = published_targets(tributary);
    let listen = image.env_var("TRIBUTARY_LISTEN");
    let port = listen.rsplit(':').next().unwrap_or_default();
    assert!(
        targets.iter().any(|target| target == port),
        "docker-compose.yml: services.tributary.ports publish container port(s) {targets:?}, but the image \
         listens on {listen}"
    );

    let test =
        command_words(tributary.get("healthcheck").and_then(|healthcheck| healthcheck.get("test")));
    let binary = &image.entrypoint()[0];
    assert!(
        test.first().is_some_and(|first| first == "CMD") && test.get(1) == Some(binary),
        "docker-compose.yml: services.tributary.healthcheck.test is {test:?}; it should be [\"CMD\", {binary:?}, \
         \"healthcheck\"], the binary the image ships (there is no shell or curl in it)"
    );
}

#[test]
fn env_example_documents_every_compose_variable_with_its_default() {
    let compose = Compose::load();
    let mut used = BTreeMap::new();
    collect_variables(&compose.root, &mut used);
    let text = read(".env.example");
    let documented: BTreeMap<&str, &str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .collect();

    for (name, default) in &used {
        let Some(example) = documented.get(name.as_str()) else {
            panic!(
                "docker-compose.yml reads ${{{name}}}, but .env.example does not document it: add `{name}=...`"
            )
        };
        if let Some(default) = default {
            assert_eq!(
                *example,
                default.as_str(),
                ".env.example sets {name}={example}, but docker-compose.yml's default is {default}: make them \
                 agree, so that copying .env.example to .env changes nothing"
            );
        }
    }
    let stale: Vec<&&str> = documented.keys().filter(|name| !used.contains_key(**name)).collect();
    assert!(
        stale.is_empty(),
        ".env.example documents {stale:?}, which docker-compose.yml never reads"
    );
}

// ---- reading the Dockerfile -------------------------------------------------

/// What the Dockerfile's last stage, the one `docker build` produces, declares.
struct Image {
    env: Vec<(String, String)>,
    user: Option<String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    healthcheck: Vec<String>,
    expose: Vec<String>,
    /// Where the stage copies a file named `tributary` to.
    binary_path: Option<String>,
}

impl Image {
    fn from_dockerfile() -> Self {
        let instructions = instructions(&read("Dockerfile"));
        let last_from = instructions
            .iter()
            .rposition(|(keyword, _)| keyword == "FROM")
            .expect("the Dockerfile has no FROM");
        let mut image = Image {
            env: Vec::new(),
            user: None,
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            healthcheck: Vec::new(),
            expose: Vec::new(),
            binary_path: None,
        };
        for (keyword, args) in &instructions[last_from + 1..] {
            match keyword.as_str() {
                "ENV" => image.env.extend(parse_env(args)),
                "USER" => image.user = Some(args.clone()),
                "ENTRYPOINT" => image.entrypoint = exec_form("ENTRYPOINT", args),
                "CMD" => image.cmd = exec_form("CMD", args),
                "HEALTHCHECK" => image.healthcheck = healthcheck_command(args),
                "EXPOSE" => image.expose.extend(args.split_whitespace().map(str::to_owned)),
                "COPY" | "ADD" => {
                    let words: Vec<&str> =
                        args.split_whitespace().filter(|word| !word.starts_with("--")).collect();
                    if let Some((destination, sources)) = words.split_last()
                        && sources.iter().any(|source| source.ends_with("/tributary"))
                    {
                        image.binary_path = Some(match destination.strip_suffix('/') {
                            Some(directory) => format!("{directory}/tributary"),
                            None => (*destination).to_owned(),
                        });
                    }
                }
                _ => {}
            }
        }
        image
    }

    /// The ENTRYPOINT, which must start the binary the stage copies in.
    fn entrypoint(&self) -> &[String] {
        let binary = self
            .binary_path
            .as_deref()
            .expect("the Dockerfile's runtime stage copies no file named `tributary` in");
        assert!(
            self.entrypoint.first().map(String::as_str) == Some(binary),
            "the Dockerfile's ENTRYPOINT is {:?}, but the binary is copied to {binary}: the ENTRYPOINT must start it",
            self.entrypoint
        );
        &self.entrypoint
    }

    /// The last value the stage gives an environment variable.
    fn env_var(&self, name: &str) -> String {
        self.env.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.clone()).unwrap_or_else(|| {
            panic!("the Dockerfile's runtime stage does not set ENV {name}; it should, so the image says how it runs")
        })
    }

    /// The uid and gid to run as: the image's USER when numeric, else nobody.
    fn uid_gid(&self) -> (u32, u32) {
        let user = self.user.as_deref().unwrap_or_default();
        let (uid, gid) = user.split_once(':').unwrap_or((user, user));
        (uid.parse().unwrap_or(NOBODY), gid.parse().unwrap_or(NOBODY))
    }

    /// The server's and the healthcheck's argv (with `binary` in place of the
    /// image's path) and the environment, moved to `port` on 127.0.0.1 so tests
    /// can run side by side.
    fn commands_on_loopback(
        &self,
        binary: &str,
        port: u16,
    ) -> (Vec<String>, Vec<String>, Vec<(String, String)>) {
        let mut server: Vec<String> = self.entrypoint().iter().chain(&self.cmd).cloned().collect();
        server[0] = binary.to_owned();
        assert_eq!(
            server.get(1).map(String::as_str),
            Some("serve"),
            "the image would run {:?} {:?}: ENTRYPOINT plus CMD should start `tributary serve`",
            self.entrypoint,
            self.cmd
        );

        let mut healthcheck = self.healthcheck.clone();
        assert!(
            healthcheck.first() == self.binary_path.as_ref()
                && healthcheck.get(1).map(String::as_str) == Some("healthcheck"),
            "the Dockerfile's HEALTHCHECK runs {healthcheck:?}; it should run [{:?}, \"healthcheck\"], the binary \
             the image ships (there is no shell or curl in it)",
            self.binary_path.as_deref().unwrap_or("/usr/local/bin/tributary")
        );
        healthcheck[0] = binary.to_owned();

        let listen = self.env_var("TRIBUTARY_LISTEN");
        let listen_port = listen.rsplit(':').next().unwrap_or_default().to_owned();
        let mut env = self.env.clone();
        let mut url_in_env = false;
        for (key, value) in &mut env {
            match key.as_str() {
                "TRIBUTARY_LISTEN" => *value = format!("127.0.0.1:{port}"),
                "TRIBUTARY_HEALTHCHECK_URL" => {
                    *value = loopback_url(value, &listen_port, port);
                    url_in_env = true;
                }
                _ => {}
            }
        }
        let mut url_in_argv = false;
        for i in 2..healthcheck.len() {
            if let Some(url) = healthcheck[i].strip_prefix("--url=") {
                healthcheck[i] = format!("--url={}", loopback_url(url, &listen_port, port));
                url_in_argv = true;
            } else if healthcheck[i - 1] == "--url" {
                healthcheck[i] = loopback_url(&healthcheck[i], &listen_port, port);
                url_in_argv = true;
            }
        }
        assert!(
            url_in_env || url_in_argv,
            "the Dockerfile's HEALTHCHECK relies on tributary's built-in URL; set ENV TRIBUTARY_HEALTHCHECK_URL \
             (or pass --url) so the image states which port it probes"
        );
        (server, healthcheck, env)
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port`, after checking
/// that it points at this container's own listening port.
fn loopback_url(url: &str, listen_port: &str, port: u16) -> String {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| {
        panic!("the Dockerfile sets TRIBUTARY_HEALTHCHECK_URL={url}; it should be an http:// URL")
    });
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, url_port) = authority.rsplit_once(':').unwrap_or((authority, "80"));
    assert!(
        ["127.0.0.1", "localhost", "[::1]"].contains(&host) && url_port == listen_port,
        "the Dockerfile sets TRIBUTARY_HEALTHCHECK_URL={url}, but the server listens on port {listen_port} of the \
         container itself: the URL should be http://127.0.0.1:{listen_port}{path}"
    );
    format!("http://127.0.0.1:{port}{path}")
}

/// The Dockerfile's instructions as (KEYWORD, arguments), with comments and
/// blank lines dropped and `\` continuations joined.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            (keyword.to_ascii_uppercase(), args.trim().to_owned())
        })
        .collect()
}

/// `ENV a=1 b="two words"`, or the legacy `ENV a value`.
fn parse_env(args: &str) -> Vec<(String, String)> {
    let words = shell_words(args);
    if words.first().is_some_and(|word| !word.contains('=')) {
        let (key, value) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        return vec![(key.to_owned(), value.trim().to_owned())];
    }
    words
        .into_iter()
        .map(|word| {
            let (key, value) = word.split_once('=').unwrap_or((&word, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

/// Splits on whitespace outside double quotes, dropping the quotes.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => word.extend(chars.next()),
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The JSON array of an exec-form instruction.
fn exec_form(keyword: &str, args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|_| {
        panic!(
            "the Dockerfile has `{keyword} {args}` in shell form; use the exec form ({keyword} [\"...\"]): the \
             runtime image has no shell, and only the exec form lets tributary run as PID 1 and get SIGTERM"
        )
    })
}

/// The command of `HEALTHCHECK [--option=value ...] CMD [...]`.
fn healthcheck_command(args: &str) -> Vec<String> {
    let Some(index) = args.find("CMD") else {
        panic!(
            "the Dockerfile has `HEALTHCHECK {args}`; it should run `CMD [\"/usr/local/bin/tributary\", \"healthcheck\"]`"
        )
    };
    exec_form("HEALTHCHECK CMD", args[index + 3..].trim())
}

// ---- running the binary the way the image would -------------------------------

/// This build's binary where the image's user can run it. The target directory
/// may sit where only root can enter (under /root, say), so when the test runs
/// as root the binary is linked, or else copied, into a world-readable
/// temporary directory, much as the image keeps it in /usr/local/bin.
struct ReachableBinary {
    path: String,
    _dir: Option<tempfile::TempDir>,
}

impl ReachableBinary {
    fn new() -> Self {
        if !running_as_root() {
            return ReachableBinary { path: BINARY.to_owned(), _dir: None };
        }
        let dir = tempfile::tempdir().expect("a temporary directory for the binary");
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755))
            .expect("a world-readable temporary directory");
        let path = dir.path().join("tributary");
        std::fs::hard_link(BINARY, &path)
            .or_else(|_| std::fs::copy(BINARY, &path).map(drop))
            .unwrap_or_else(|e| panic!("cannot put {BINARY} into {}: {e}", dir.path().display()));
        ReachableBinary { path: path.display().to_string(), _dir: Some(dir) }
    }

    fn path(&self) -> &str {
        &self.path
    }
}

/// A running `tributary serve`, killed when dropped so a failing test leaves
/// no process behind.
struct Server {
    process: Process,
    log: tempfile::NamedTempFile,
}

impl Server {
    fn start(argv: &[String], env: &[(String, String)], (uid, gid): (u32, u32)) -> Self {
        let log = tempfile::NamedTempFile::new().expect("a temporary file for the server's log");
        let mut command = image_command(argv, env, (uid, gid));
        command
            .stdout(log.reopen().expect("the log file"))
            .stderr(log.reopen().expect("the log file"));
        let process = Process::spawn(&mut command)
            .unwrap_or_else(|e| panic!("cannot start {argv:?} as uid {uid}: {e}"));
        Server { process, log }
    }

    async fn wait_until_healthz_answers_200(&mut self, url: &str) {
        let client =
            reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(1)).build().unwrap();
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if let Some(status) = self.process.exited() {
                panic!(
                    "tributary exited with {status} before {url} answered. Its log:\n{}",
                    self.log()
                );
            }
            let last = match client.get(url).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::OK => return,
                Ok(response) => format!("status {}", response.status()),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "{url} did not answer 200 within {STARTUP_DEADLINE:?} (last: {last}). The server's log:\n{}",
                self.log()
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Checks the process's owner, where the test could switch to the image's
    /// user (it runs as root).
    fn assert_runs_as(&self, uid: u32) {
        if running_as_root() {
            let owner = std::fs::metadata(format!("/proc/{}", self.process.id()))
                .expect("the server's /proc entry")
                .uid();
            assert_eq!(owner, uid, "the server runs as uid {owner}, not as the image's USER {uid}");
        }
    }

    /// Sends SIGTERM, as `docker stop` does, and waits as long as Docker would.
    fn stop_like_docker(&mut self) -> ExitStatus {
        self.process.signal("TERM");
        self.process.wait_for_exit(DOCKER_STOP_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "tributary was still running {DOCKER_STOP_TIMEOUT:?} after SIGTERM; `docker stop` would SIGKILL it. \
                 Its log:\n{}",
                self.log()
            )
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

/// A command with the image's environment only (no variable of the test's
/// leaks in), run as the image's user when the test itself runs as root.
fn image_command(argv: &[String], env: &[(String, String)], (uid, gid): (u32, u32)) -> Command {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env.iter().map(|(key, value)| (key, value)))
        .current_dir("/");
    if running_as_root() {
        command.uid(uid).gid(gid);
    }
    command
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|process| process.uid() == 0)
}

fn run(argv: &[String], env: &[(String, String)], user: (u32, u32)) -> Output {
    image_command(argv, env, user).output().unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"))
}

fn describe(output: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

// ---- reading docker-compose.yml ---------------------------------------------

/// The Compose files that define the store: the default (Valkey) and the
/// Redis override, which must keep the same durability settings.
const STORE_FILES: [&str; 2] = ["docker-compose.yml", "compose.redis.yml"];

struct Compose {
    file: &'static str,
    root: Value,
}

impl Compose {
    fn load() -> Self {
        Self::load_file("docker-compose.yml")
    }

    fn load_file(file: &'static str) -> Self {
        let root = serde_norway::from_str(&read(file))
            .unwrap_or_else(|e| panic!("{file} is not valid YAML: {e}"));
        Compose { file, root }
    }

    fn service(&self, name: &str) -> &Value {
        self.root
            .get("services")
            .and_then(|services| services.get(name))
            .unwrap_or_else(|| panic!("{} has no service named {name:?}", self.file))
    }
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A `command:` or healthcheck `test:` as words, whether written as a string
/// or a list.
fn command_words(command: Option<&Value>) -> Vec<String> {
    match command {
        Some(Value::String(line)) => line.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Sequence(items)) => items.iter().map(scalar).collect(),
        _ => Vec::new(),
    }
}

/// A service's `environment:`, whether written as a map or a list.
fn env_of(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        Some(Value::Mapping(map)) => {
            map.iter().map(|(key, value)| (scalar(key), scalar(value))).collect()
        }
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|item| {
                let item = scalar(item);
                let (key, value) = item.split_once('=')?;
                Some((key.to_owned(), value.to_owned()))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The container ports a service publishes, in short or long syntax.
fn published_targets(service: &Value) -> Vec<String> {
    let ports = service.get("ports").and_then(Value::as_sequence).into_iter().flatten();
    ports
        .filter_map(|port| match port {
            Value::Mapping(_) => port.get("target").map(scalar),
            other => {
                let short = with_defaults(&scalar(other));
                let target = short.split('/').next()?.rsplit(':').next()?.to_owned();
                Some(target)
            }
        })
        .collect()
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        other => inline(other),
    }
}

/// A YAML value on one line (as JSON), for messages.
fn inline(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}

/// Every `${NAME}`, `${NAME:-default}` or `${NAME-default}` in the file's
/// strings, with its default; `${NAME:?message}` and `${NAME?message}`
/// (required: Compose refuses to start without it) have none.
fn collect_variables(value: &Value, found: &mut BTreeMap<String, Option<String>>) {
    match value {
        Value::String(text) => {
            for (name, default) in variables(text) {
                found.insert(name, default);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|item| collect_variables(item, found)),
        Value::Mapping(map) => map.iter().for_each(|(key, item)| {
            collect_variables(key, found);
            collect_variables(item, found);
        }),
        _ => {}
    }
}

fn variables(text: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + end];
        let name_end =
            inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
        let (name, modifier) = inner.split_at(name_end);
        let default =
            modifier.strip_prefix(":-").or_else(|| modifier.strip_prefix('-')).map(str::to_owned);
        found.push((name.to_owned(), default));
        rest = &rest[start + end + 1..];
    }
    found
}

/// `text` with each `${NAME:-default}` replaced by its default, as Compose
/// reads it when no .env sets anything.
fn with_defaults(text: &str) -> String {
    let mut out = text.to_owned();
    for (name, default) in variables(text) {
        let default = default.unwrap_or_default();
        for form in [
            format!("${{{name}:-{default}}}"),
            format!("${{{name}-{default}}}"),
            format!("${{{name}}}"),
        ] {
            out = out.replace(&form, &default);
        }
    }
    out
}

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

//! What Compose exposes and requires: the store's password, the API and
//! metrics ports, keys that turn auth on, and `.env.example` documenting
//! every variable.

use super::*;

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

//! docker-compose.yml and the store: Redis/Valkey reachable only inside the
//! network, healthy before Tributary starts, fsyncing every write to a named
//! volume, refusing writes past maxmemory, and time for Tributary's drain.

use super::*;

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

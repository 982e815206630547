//! The image, as the Dockerfile's runtime stage describes it: started
//! exactly as Docker would start it, its user, base images and port.

use super::*;

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

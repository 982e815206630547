//! Reading the Dockerfile: the instructions of its last stage, and the
//! server's and healthcheck's commands moved to a loopback port.

use super::*;

/// What the Dockerfile's last stage, the one `docker build` produces, declares.
pub(super) struct Image {
    pub(super) env: Vec<(String, String)>,
    pub(super) user: Option<String>,
    pub(super) entrypoint: Vec<String>,
    pub(super) cmd: Vec<String>,
    pub(super) healthcheck: Vec<String>,
    pub(super) expose: Vec<String>,
    /// Where the stage copies a file named `tributary` to.
    pub(super) binary_path: Option<String>,
}

impl Image {
    pub(super) fn from_dockerfile() -> Self {
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
    pub(super) fn entrypoint(&self) -> &[String] {
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
    pub(super) fn env_var(&self, name: &str) -> String {
        self.env.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.clone()).unwrap_or_else(|| {
            panic!("the Dockerfile's runtime stage does not set ENV {name}; it should, so the image says how it runs")
        })
    }

    /// The uid and gid to run as: the image's USER when numeric, else nobody.
    pub(super) fn uid_gid(&self) -> (u32, u32) {
        let user = self.user.as_deref().unwrap_or_default();
        let (uid, gid) = user.split_once(':').unwrap_or((user, user));
        (uid.parse().unwrap_or(NOBODY), gid.parse().unwrap_or(NOBODY))
    }

    /// The server's and the healthcheck's argv (with `binary` in place of the
    /// image's path) and the environment, moved to `port` on 127.0.0.1 so tests
    /// can run side by side.
    pub(super) fn commands_on_loopback(
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
pub(super) fn loopback_url(url: &str, listen_port: &str, port: u16) -> String {
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
pub(super) fn instructions(dockerfile: &str) -> Vec<(String, String)> {
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
pub(super) fn parse_env(args: &str) -> Vec<(String, String)> {
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
pub(super) fn shell_words(text: &str) -> Vec<String> {
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
pub(super) fn exec_form(keyword: &str, args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|_| {
        panic!(
            "the Dockerfile has `{keyword} {args}` in shell form; use the exec form ({keyword} [\"...\"]): the \
             runtime image has no shell, and only the exec form lets tributary run as PID 1 and get SIGTERM"
        )
    })
}

/// The command of `HEALTHCHECK [--option=value ...] CMD [...]`.
pub(super) fn healthcheck_command(args: &str) -> Vec<String> {
    let Some(index) = args.find("CMD") else {
        panic!(
            "the Dockerfile has `HEALTHCHECK {args}`; it should run `CMD [\"/usr/local/bin/tributary\", \"healthcheck\"]`"
        )
    };
    exec_form("HEALTHCHECK CMD", args[index + 3..].trim())
}

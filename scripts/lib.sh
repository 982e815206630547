# shellcheck shell=bash
# Shell helpers shared by bench/run and scripts/*: source it, don't run it.

# A TCP port free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Installs Debian package $2 unless command $1 exists, through sudo when not
# root. Returns 1, saying so, on a system without apt-get.
ensure_command() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$1 is missing and there is no apt-get here: install $2 yourself, then rerun" >&2
        return 1
    fi
    echo "$1 is missing: installing $2 from the system's packages" >&2
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

# Cargo's target directory as an absolute path: $CARGO_TARGET_DIR when set
# (relative to the repository root, where the scripts run cargo), else target/.
target_dir() {
    local dir="${CARGO_TARGET_DIR:-target}"
    [[ "$dir" == /* ]] || dir="$PWD/$dir"
    echo "$dir"
}

# Builds binary $1 (debug) and prints its path, as cargo reports it: right
# whatever target directory cargo uses (CARGO_TARGET_DIR, a config file, a
# wrapper that picks one per worktree).
# Built with --tests so that its dependencies have the same features as
# `cargo test`'s build (dev-dependencies unify features): after the tests this
# is a no-op instead of a second build of the whole tree.
built_binary() { # name
    cargo build --locked --quiet --bin "$1" --tests --message-format=json-render-diagnostics |
        python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") \
            and message["target"]["name"] == sys.argv[1] \
            and "bin" in message["target"]["kind"] and not message["profile"]["test"]:
        print(message["executable"])
' "$1"
}

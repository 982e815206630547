//! Faults to put between the service and Redis: a server that never answers,
//! and a proxy that stops forwarding while keeping its sockets open.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A TCP server that accepts connections and never answers, holding every
/// socket open: a Redis that is wedged, as far as a client can tell.
pub struct SilentServer {
    pub port: u16,
    task: JoinHandle<()>,
}

impl SilentServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Self { port, task }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP proxy to `127.0.0.1:<upstream>` that can stop forwarding while
/// keeping its sockets open, as a stuck network path or a frozen peer does.
pub struct TcpProxy {
    pub port: u16,
    gates: Arc<ProxyGates>,
    task: JoinHandle<()>,
}

/// One gate per accepted connection (open: bytes flow), and whether new
/// connections start open.
#[derive(Default)]
struct ProxyGates {
    connections: Mutex<Vec<watch::Sender<bool>>>,
    new_connections_flow: AtomicBool,
}

impl TcpProxy {
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let gates = Arc::new(ProxyGates::default());
        gates.new_connections_flow.store(true, Ordering::SeqCst);
        let task = tokio::spawn(Self::accept_loop(listener, upstream, gates.clone()));
        Self { port, gates, task }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops forwarding on every connection, open or yet to be opened; the
    /// sockets stay open and nothing is answered.
    pub fn stall(&self) {
        self.gates.new_connections_flow.store(false, Ordering::SeqCst);
        for gate in self.gates.connections.lock().unwrap().iter() {
            let _ = gate.send(false);
        }
    }

    /// New connections are forwarded again; the stalled ones stay stalled for
    /// good, like a half-open connection to a host that went away.
    pub fn forward_new_connections(&self) {
        self.gates.new_connections_flow.store(true, Ordering::SeqCst);
    }

    /// How many connections the proxy has accepted.
    pub fn connections(&self) -> usize {
        self.gates.connections.lock().unwrap().len()
    }

    async fn accept_loop(listener: TcpListener, upstream: u16, gates: Arc<ProxyGates>) {
        // Dropping the set (when this task is aborted) aborts every connection's copies.
        let mut copies = JoinSet::new();
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                continue;
            };
            let flowing = gates.new_connections_flow.load(Ordering::SeqCst);
            let (gate, open) = watch::channel(flowing);
            gates.connections.lock().unwrap().push(gate);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            copies.spawn(copy_while_open(client_read, server_write, open.clone()));
            copies.spawn(copy_while_open(server_read, client_write, open));
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, holding each chunk (and reading no further) while the gate is closed.
async fn copy_while_open(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut open: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if open.wait_for(|open| *open).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Stalled while this chunk was on its way: hold it.
        if open.wait_for(|open| *open).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

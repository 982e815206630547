//! One raw HTTP/1.1 client over one TCP connection, for what reqwest will not
//! do on purpose: stop halfway through a request, trickle bytes, send bytes a
//! library would correct, keep one connection across a shutdown, and tell "no
//! answer" from "half an answer". It is async because a blocking read would
//! stall a server running in-process on a single-threaded test runtime.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a read waits for the server before the test gives up on it.
const READ_DEADLINE: Duration = Duration::from_secs(10);

/// A TCP connection to the server, spoken to byte by byte.
pub struct RawConnection {
    stream: BufReader<TcpStream>,
}

/// One response as it came off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// The status line and the headers, as sent.
    pub head: String,
    pub body: String,
}

/// Why no whole response could be read.
#[derive(Debug, PartialEq)]
pub enum NoResponse {
    /// The connection closed (end of file or reset) before a byte of an answer.
    Closed,
    /// It closed partway through; what had arrived.
    Partial(String),
    /// Nothing more came within the read deadline.
    TimedOut,
}

impl RawResponse {
    /// The value of header `name`, which is matched without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// Whether the server keeps the connection open after this response.
    pub fn keep_alive(&self) -> bool {
        self.header("connection").is_none_or(|value| !value.eq_ignore_ascii_case("close"))
    }
}

impl RawConnection {
    /// Connects to the server on `port`; a refusal is returned, not a panic,
    /// as a closed listener is what some tests wait for.
    pub async fn open(port: u16) -> io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        Ok(Self { stream: BufReader::new(stream) })
    }

    /// Writes `bytes`: a whole request, or any part of one.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        self.stream.get_mut().write_all(bytes.as_ref()).await
    }

    /// Reads one response (its body by `Content-Length`), leaving the
    /// connection ready for the next.
    pub async fn response(&mut self) -> Result<RawResponse, NoResponse> {
        tokio::time::timeout(READ_DEADLINE, self.read_response())
            .await
            .unwrap_or(Err(NoResponse::TimedOut))
    }

    async fn read_response(&mut self) -> Result<RawResponse, NoResponse> {
        let mut head = String::new();
        loop {
            let before = head.len();
            match self.stream.read_line(&mut head).await {
                Ok(0) | Err(_) if head.is_empty() => return Err(NoResponse::Closed),
                Ok(0) | Err(_) => return Err(NoResponse::Partial(head)),
                Ok(_) if head[before..] == *"\r\n" => break,
                Ok(_) => {}
            }
        }
        let status = head.split(' ').nth(1).and_then(|code| code.parse().ok());
        let Some(status) = status else { return Err(NoResponse::Partial(head)) };
        let mut response = RawResponse { status, head, body: String::new() };
        let length = response.header("content-length").and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        if self.stream.read_exact(&mut body).await.is_err() {
            return Err(NoResponse::Partial(response.head));
        }
        response.body = String::from_utf8_lossy(&body).into_owned();
        Ok(response)
    }

    /// Everything the server sends until it closes the connection; an error
    /// if it resets it, or leaves it open past the read deadline.
    pub async fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        match tokio::time::timeout(READ_DEADLINE, self.stream.read_to_end(&mut bytes)).await {
            Ok(read) => read.map(|_| bytes),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the connection was left open")),
        }
    }

    /// Writes a byte every `every` until the server cuts the connection off
    /// (closes it, resets it, or answers: hyper may say 408).
    pub async fn trickle_until_cut_off(&mut self, every: Duration) {
        let started = Instant::now();
        let mut buffer = [0; 256];
        loop {
            if self.send(b"a").await.is_err() {
                return;
            }
            // Anything read before the timeout (end of file, a reset or an
            // answer) means the server is done with this client.
            if tokio::time::timeout(every, self.stream.read(&mut buffer)).await.is_ok() {
                return;
            }
            assert!(started.elapsed() < READ_DEADLINE, "a slow client was never cut off");
        }
    }
}

/// Sends `request` (which should say `Connection: close`) on a new connection
/// and returns everything the server answers before it closes it.
pub async fn exchange(port: u16, request: &str) -> String {
    let mut connection = RawConnection::open(port).await.unwrap();
    connection.send(request).await.unwrap();
    let bytes = connection.read_to_close().await.unwrap();
    String::from_utf8(bytes).unwrap()
}

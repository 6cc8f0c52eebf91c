//! A TCP relay between the provider and PostgreSQL that counts round trips: every time a
//! client sends after it was answered, it waited for the server once. Messages a client sends
//! without waiting (sqlx's Bind/Execute/Sync in one write, a pipeline) count once, as they cost
//! one wait. Used for a short profiling phase only; the measured phases connect directly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// A listening relay and the round trips every connection through it has made so far.
pub struct Relay {
    pub addr: SocketAddr,
    trips: Arc<AtomicU64>,
}

impl Relay {
    /// Listens on a free loopback port and relays each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let trips = Arc::new(AtomicU64::new(0));
        let counted = trips.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(upstream).await.unwrap();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                // Answered until the client's first message: connecting is a wait too.
                let answered = Arc::new(AtomicBool::new(true));
                tokio::spawn(requests(
                    client_read,
                    server_write,
                    answered.clone(),
                    counted.clone(),
                ));
                tokio::spawn(answers(server_read, client_write, answered));
            }
        });
        Relay { addr, trips }
    }

    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::SeqCst)
    }
}

async fn requests(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    answered: Arc<AtomicBool>,
    trips: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if answered.swap(false, Ordering::SeqCst) {
            trips.fetch_add(1, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

async fn answers(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, answered: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        // Before the client can see the answer, so its next write counts.
        answered.store(true, Ordering::SeqCst);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

//! A TCP proxy a test puts in front of a shared server (Redis, PostgreSQL,
//! RabbitMQ) to take that server away from one process and bring it back,
//! without touching the server other tests use.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
    task::JoinHandle,
};

/// What the proxy does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Forwards to the server.
    Up,
    /// Cuts open connections and closes new ones at once: a server that died.
    Down,
    /// Cuts open connections and holds new ones without a byte of answer: a
    /// server that hangs, or a network that drops packets.
    Hanging,
}

pub struct TcpProxy {
    addr: SocketAddr,
    link: watch::Sender<Link>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// A proxy on a free loopback port to `upstream` (`host:port`), starting in `link`.
    pub async fn start(upstream: &str, link: Link) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, receiver) = watch::channel(link);
        let upstream = upstream.to_owned();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let link = receiver.clone();
                let upstream = upstream.clone();
                tokio::spawn(serve(client, upstream, link));
            }
        });
        Self {
            addr,
            link: sender,
            accept,
        }
    }

    /// A proxy to the server of `url` (its `host[:port]`, `default_port` if none),
    /// and `url` pointed at the proxy instead.
    pub async fn in_front_of(url: &str, default_port: u16, link: Link) -> (Self, String) {
        let authority = crate::infra::authority(url);
        let proxy = Self::start(&crate::infra::host_port(url, default_port), link).await;
        let proxied = url.replacen(authority, &proxy.addr.to_string(), 1);
        (proxy, proxied)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.link.send_replace(Link::Down);
    }
}

/// One client connection, for as long as the link stays as it was when it came.
async fn serve(client: TcpStream, upstream: String, mut link: watch::Receiver<Link>) {
    let state = *link.borrow_and_update();
    let (to_server, to_client) = (link.clone(), link.clone());
    let changed = async move {
        let _ = link.wait_for(|now| *now != state).await;
    };
    match state {
        Link::Down => {}
        Link::Hanging => changed.await,
        Link::Up => {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let ((client_in, client_out), (server_in, server_out)) =
                (client.into_split(), server.into_split());
            tokio::select! {
                () = pump(client_in, server_out, to_server, state) => {}
                () = pump(server_in, client_out, to_client, state) => {}
                () = changed => {}
            }
        }
    }
}

/// Copies one direction, checking the link before each chunk: once `set`
/// has returned, nothing more crosses a link that changed, however late this
/// task notices the change.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    link: watch::Receiver<Link>,
    state: Link,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if *link.borrow() != state || to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

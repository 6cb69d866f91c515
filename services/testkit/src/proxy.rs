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
    /// Keeps open connections open but carries nothing more, and holds new
    /// ones: a peer cut off without either side noticing.
    Stalled,
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
    let (to_server, to_client, mut stalled) = (link.clone(), link.clone(), link.clone());
    let changed = async move {
        let _ = link.wait_for(|now| *now != state).await;
    };
    match state {
        Link::Down => {}
        Link::Hanging | Link::Stalled => changed.await,
        Link::Up => {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let ((mut client_in, mut client_out), (mut server_in, mut server_out)) =
                (client.into_split(), server.into_split());
            tokio::select! {
                () = pump(&mut client_in, &mut server_out, to_server, state) => {}
                () = pump(&mut server_in, &mut client_out, to_client, state) => {}
                () = changed => {}
            }
            // Stalled: both ends stay open, carrying nothing, until the link changes again.
            let _ = stalled.wait_for(|now| *now != Link::Stalled).await;
        }
    }
}

/// Copies one direction, checking the link before each chunk: once `set`
/// has returned, nothing more crosses a link that changed, however late this
/// task notices the change.
async fn pump(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
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
